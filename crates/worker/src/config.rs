//! Worker configuration (the CLI and the demo build one of these).

use std::path::PathBuf;
use std::time::Duration;

/// Where a session's files live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkdirLayout {
    /// `<workdir>/sessions/<session_id>`, created 0700 per session (sandkeep default).
    #[default]
    PerSession,
    /// `<workdir>` itself, shared by all sessions (the SDK's layout).
    Shared,
}

/// Everything `run_poll` / `run_item` need. `Debug` hides the environment key.
#[derive(Clone)]
pub struct WorkerConfig {
    pub client: sandkeep_api::ClientConfig,
    pub environment_id: Option<String>,
    pub environment_key: Option<String>,
    /// Sent as `Anthropic-Worker-ID` on polls.
    pub worker_id: String,
    pub workdir: PathBuf,
    pub layout: WorkdirLayout,
    /// Idle grace after a turn ends; `None` disables it.
    pub max_idle: Option<Duration>,
    /// Items handled at once.
    pub max_sessions: usize,
    /// On shutdown, how long in-flight items may keep running before they are cancelled.
    pub drain_timeout: Duration,
    /// Return once the queue is empty (§4.2 step 2).
    pub drain: bool,
    pub reclaim_older_than_ms: Option<u64>,
    /// `--on-work` script (§10.4); `None` or `in-process` = the built-in runner.
    pub on_work: Option<PathBuf>,
    pub policy: sandkeep_sandbox::Policy,
    /// Keep per-session directories after the session ends.
    pub keep_workspace: bool,
    /// Outer bound of any tool call (§4.1: 150 s).
    pub tool_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self {
            client: sandkeep_api::ClientConfig::default(),
            environment_id: None,
            environment_key: None,
            worker_id: sandkeep_api::default_worker_id(),
            workdir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            layout: WorkdirLayout::PerSession,
            max_idle: Some(Duration::from_secs(60)),
            max_sessions: cpus * 4,
            drain_timeout: Duration::from_secs(30),
            drain: false,
            reclaim_older_than_ms: None,
            on_work: None,
            policy: sandkeep_sandbox::Policy::default(),
            keep_workspace: false,
            tool_timeout: Duration::from_secs(150),
        }
    }
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("base_url", &self.client.base_url)
            .field("environment_id", &self.environment_id)
            .field(
                "environment_key",
                &self.environment_key.as_ref().map(|_| "<redacted>"),
            )
            .field("worker_id", &self.worker_id)
            .field("workdir", &self.workdir)
            .field("layout", &self.layout)
            .field("max_idle", &self.max_idle)
            .field("max_sessions", &self.max_sessions)
            .field("drain_timeout", &self.drain_timeout)
            .field("drain", &self.drain)
            .field("reclaim_older_than_ms", &self.reclaim_older_than_ms)
            .field("on_work", &self.on_work)
            .field("policy", &self.policy)
            .field("keep_workspace", &self.keep_workspace)
            .field("tool_timeout", &self.tool_timeout)
            .finish()
    }
}

impl WorkerConfig {
    /// The `--on-work` script, unless it is absent or the literal `in-process`.
    pub fn on_work_script(&self) -> Option<&PathBuf> {
        self.on_work
            .as_ref()
            .filter(|p| p.as_os_str() != "in-process" && !p.as_os_str().is_empty())
    }
}

/// A work item claimed elsewhere (`worker run` / `handle_item`).
/// `Debug` hides the secret.
#[derive(Clone)]
pub struct ClaimedItem {
    pub work_id: String,
    pub environment_id: String,
    pub session_id: String,
    pub secret: Option<String>,
}

impl std::fmt::Debug for ClaimedItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedItem")
            .field("work_id", &self.work_id)
            .field("environment_id", &self.environment_id)
            .field("session_id", &self.session_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_credentials() {
        let config = WorkerConfig {
            environment_key: Some("sk-very-secret".into()),
            ..WorkerConfig::default()
        };
        let item = ClaimedItem {
            work_id: "w".into(),
            environment_id: "e".into(),
            session_id: "s".into(),
            secret: Some("c2VjcmV0".into()),
        };
        let text = format!("{config:?} {item:?}");
        assert!(
            !text.contains("sk-very-secret") && !text.contains("c2VjcmV0"),
            "{text}"
        );
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn in_process_means_no_script() {
        let mut config = WorkerConfig {
            on_work: Some(PathBuf::from("in-process")),
            ..WorkerConfig::default()
        };
        assert!(config.on_work_script().is_none());
        config.on_work = Some(PathBuf::from("/bin/handler"));
        assert_eq!(
            config.on_work_script(),
            Some(&PathBuf::from("/bin/handler"))
        );
    }
}
