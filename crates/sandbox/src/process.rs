//! Host side of `isolation = "process"`: start a session's sandbox, forward calls
//! over the channel, report OOM kills, and tear everything down.

use crate::channel::{self, CallRequest, InitConfig, LimitsFrame, Ready};
use crate::limits::{cgroup_name, SessionLimits};
use crate::policy::{Network, Policy};
use crate::spawn::{kill_and_reap, spawn_init, wait_exit, IdMap};
use crate::uid_slots::{self, UidSlot};
use crate::SessionSpec;
use anyhow::{bail, Context};
use sandkeep_tools::ToolOutput;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Environment override for the init binary (tests, custom layouts).
pub const INIT_EXE_ENV: &str = "SANDKEEP_INIT_EXE";
/// Extra time the worker waits beyond a call's deadline before declaring the init hung.
const HANG_GRACE: Duration = Duration::from_secs(10);
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// One live sandbox.
pub struct SandboxSession {
    pid: Option<i32>,
    chan: UnixStream,
    limits: SessionLimits,
    _slot: Option<UidSlot>,
    placeholders: Vec<PathBuf>,
    workspace: PathBuf,
    /// Landlock ABI the init enforced (0 = none).
    pub landlock_abi: i32,
    /// Time from spawn to the init's ready answer.
    pub ready_after: Duration,
}

impl SandboxSession {
    /// Build the session's sandbox; fails closed when the host cannot.
    pub fn start(policy: &Policy, spec: &SessionSpec) -> anyhow::Result<Self> {
        static PROBE: std::sync::OnceLock<crate::probe::HostReport> = std::sync::OnceLock::new();
        let report = PROBE.get_or_init(crate::probe::probe_host);
        report
            .supports(policy)
            .map_err(|why| anyhow::anyhow!("isolation `process` is not available: {why}"))?;
        let workspace = std::fs::canonicalize(&spec.workspace).with_context(|| {
            format!(
                "session workspace {} does not exist",
                spec.workspace.display()
            )
        })?;
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let (ids, slot) = if uid == 0 {
            let slot = uid_slots::acquire()?;
            (IdMap::Range { base: slot.base }, Some(slot))
        } else {
            (IdMap::Single { uid, gid }, None)
        };
        if let IdMap::Range { .. } = ids {
            chown_tree(&workspace, ids.workload_host_uid())
                .context("handing the workspace to the sandbox's uid")?;
        }
        let config = init_config(policy, spec, &workspace, ids.workload_uid());
        let exe = init_exe()?;
        let started = Instant::now();
        let spawned = spawn_init(&exe, policy.network != Network::Host, ids)?;
        let mut chan = spawned.channel;
        // The init builds its filesystem as soon as it has the configuration; the
        // session's cgroups are created meanwhile and handed over afterwards (the
        // init joins them before it answers ready, so no workload runs outside).
        let limits = channel::send(&mut chan, &config)
            .context("sending the sandbox configuration")
            .and_then(|()| {
                let limits = SessionLimits::create(
                    policy,
                    &cgroup_name(&spec.session_id, NEXT_ID.fetch_add(1, Ordering::Relaxed)),
                );
                let attach = limits.attach_files()?;
                let raw: Vec<_> = attach.iter().map(|f| f.as_raw_fd()).collect();
                let frame = LimitsFrame {
                    rlimits: limits.rlimit_plan(),
                };
                channel::send_with_fds(&chan, &frame, &raw)
                    .context("sending the sandbox its resource limits")?;
                Ok(limits)
            });
        let limits = match limits {
            Ok(limits) => limits,
            Err(e) => {
                kill_and_reap(spawned.pid);
                return Err(e);
            }
        };
        tracing::info!(session = %spec.session_id, limits = %limits.backend, "sandbox resource limits");
        let mut session = Self {
            pid: Some(spawned.pid),
            chan,
            limits,
            _slot: slot,
            placeholders: Vec::new(),
            workspace: workspace.clone(),
            landlock_abi: 0,
            ready_after: Duration::ZERO,
        };
        session
            .chan
            .set_read_timeout(Some(Duration::from_secs(30)))?;
        match channel::recv::<Ready>(&mut session.chan) {
            Ok(Some(Ready::Ok {
                landlock_abi,
                placeholders,
            })) => {
                session.landlock_abi = landlock_abi;
                session.placeholders = placeholders;
            }
            Ok(Some(Ready::Failed(why))) => bail!("the sandbox could not be set up: {why}"),
            Ok(None) | Err(_) => bail!(
                "the sandbox init ({}) exited during setup; check that it is the sandkeep binary \
                 (set {INIT_EXE_ENV} to override)",
                exe.display()
            ),
        }
        session.ready_after = started.elapsed();
        let workload_uid = ids.workload_uid();
        if workload_uid == 0 {
            tracing::info!(session = %spec.session_id, landlock_abi = session.landlock_abi, ready_us = session.ready_after.as_micros() as u64, "sandbox ready; the workload runs as uid 0 inside its namespace without capabilities (only one uid can be mapped when the worker is not root)");
        } else {
            tracing::info!(session = %spec.session_id, landlock_abi = session.landlock_abi, ready_us = session.ready_after.as_micros() as u64, workload_uid, "sandbox ready");
        }
        Ok(session)
    }

    /// Run one call inside the sandbox. `deadline` is the caller's outer bound.
    pub fn call(
        &mut self,
        name: &str,
        input: serde_json::Value,
        deadline: Option<Instant>,
    ) -> ToolOutput {
        if self.pid.is_none() {
            return ToolOutput::error(format!("{name}: the session's sandbox is closed"));
        }
        let ooms_before = self.limits.oom_kills();
        let pids_before = (name == "bash")
            .then(|| self.limits.pids_snapshot())
            .flatten();
        let deadline_ms =
            deadline.map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64);
        let req = CallRequest {
            tool: name.to_string(),
            input,
            deadline_ms,
        };
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()) + HANG_GRACE);
        let _ = self
            .chan
            .set_read_timeout(wait.or(Some(Duration::from_secs(3600))));
        let result = channel::send(&mut self.chan, &req)
            .and_then(|()| channel::recv::<ToolOutput>(&mut self.chan));
        let out = match result {
            Ok(Some(out)) => out,
            Ok(None) | Err(_) => {
                let oom = self.limits.oom_kills() > ooms_before;
                self.kill();
                if oom {
                    return self.oom_output(None);
                }
                return ToolOutput::error(format!(
                    "{name}: the session's sandbox stopped unexpectedly"
                ));
            }
        };
        if self.limits.oom_kills() > ooms_before {
            return self.oom_output(Some(&out));
        }
        if self.limits.process_limit_reached(pids_before) {
            return self.restart_after_process_limit(&out);
        }
        out
    }

    /// The call drove the session to its process limit (a fork bomb): restart the
    /// shell, which makes the init kill every other process of the session, and
    /// report the call as an error.
    fn restart_after_process_limit(&mut self, out: &ToolOutput) -> ToolOutput {
        let restart = CallRequest {
            tool: "bash".to_string(),
            input: serde_json::json!({"restart": true}),
            deadline_ms: None,
        };
        let _ = self.chan.set_read_timeout(Some(HANG_GRACE));
        let restarted = channel::send(&mut self.chan, &restart)
            .and_then(|()| channel::recv::<ToolOutput>(&mut self.chan));
        let mut text = format!(
            "killed: process limit of {} reached; every process of the session was killed and \
             the shell was restarted (cwd, environment variables and background jobs were reset)",
            self.limits.pids_max
        );
        match restarted {
            Ok(Some(r)) if !r.is_error => {}
            _ => {
                // The init could not restart the shell: end the session instead.
                self.kill();
                text = format!(
                    "killed: process limit of {} reached; the session's sandbox was stopped",
                    self.limits.pids_max
                );
            }
        }
        append_prior_output(&mut text, out);
        ToolOutput::error(text)
    }

    fn oom_output(&self, out: Option<&ToolOutput>) -> ToolOutput {
        let mut text = format!(
            "killed: out of memory, limit {} MiB",
            self.limits.memory_mib
        );
        if let Some(out) = out {
            append_prior_output(&mut text, out);
        }
        ToolOutput::error(text)
    }

    /// Host pid of the init (for tests and diagnostics).
    pub fn init_pid(&self) -> Option<i32> {
        self.pid
    }

    /// Close the channel, wait for the init (the kernel then kills the pid
    /// namespace), remove cgroups and empty placeholders. Idempotent.
    pub fn close(&mut self) {
        let _ = self.chan.shutdown(std::net::Shutdown::Both);
        if let Some(pid) = self.pid.take() {
            if !wait_exit(pid, Duration::from_secs(3)) {
                kill_and_reap(pid);
            }
        }
        self.limits.destroy();
        for p in self.placeholders.drain(..).rev() {
            remove_if_empty(&p, &self.workspace);
        }
    }

    fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill_and_reap(pid);
        }
    }
}

impl Drop for SandboxSession {
    fn drop(&mut self) {
        self.close();
    }
}

/// Append a call's own output (if any) below a kill notice.
fn append_prior_output(text: &mut String, out: &ToolOutput) {
    let prior = out.joined_text();
    if !prior.is_empty() && prior != "(no output)" {
        text.push('\n');
        text.push_str(&prior);
    }
}

fn init_config(
    policy: &Policy,
    spec: &SessionSpec,
    workspace: &Path,
    workload_uid: u32,
) -> InitConfig {
    let mut protected = policy.protected_paths.clone();
    protected.extend(policy.read_only_paths.iter().cloned());
    InitConfig {
        workspace: workspace.to_path_buf(),
        ro_binds: policy.ro_binds.clone(),
        rw_binds: policy.rw_binds.clone(),
        protected,
        read_only_paths: policy.read_only_paths.clone(),
        allowed_roots: spec
            .allowed_roots
            .iter()
            .filter(|p| p.exists())
            .cloned()
            .collect(),
        tmp_mib: policy.tmp_mib,
        new_netns: policy.network != Network::Host,
        env: sandbox_env(policy),
        cpus: policy.cpus.ceil().max(1.0) as usize,
        max_bash_timeout_ms: policy.max_call_timeout_ms,
        workload_uid,
    }
}

/// The allowlisted environment of the sandbox's shell.
pub fn sandbox_env(policy: &Policy) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOME".to_string(), "/workspace".to_string()),
        ("TERM".to_string(), "dumb".to_string()),
        ("TMPDIR".to_string(), "/tmp".to_string()),
        ("PS1".to_string(), String::new()),
        ("PS2".to_string(), String::new()),
    ];
    for (k, v) in std::env::vars() {
        let allowed = k == "LANG" || k.starts_with("LC_") || policy.env_passthrough.contains(&k);
        if allowed && !k.starts_with("ANTHROPIC_") {
            env.retain(|(e, _)| e != &k);
            env.push((k, v));
        }
    }
    env
}

fn init_exe() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(INIT_EXE_ENV) {
        return Ok(PathBuf::from(p));
    }
    // The running binary itself, not its path: after an upgrade replaces the file on
    // disk, `current_exe()` reads "<path> (deleted)" and the new file may be another
    // version, while /proc/self/exe still opens the inode this worker runs.
    let exe = PathBuf::from("/proc/self/exe");
    anyhow::ensure!(
        exe.exists(),
        "/proc/self/exe is not available; mount /proc so the sandbox init can be started"
    );
    Ok(exe)
}

/// Give the workspace tree to the workload's host uid (no symlink is followed).
fn chown_tree(root: &Path, uid: u32) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(root)?;
    if meta.uid() != uid || meta.gid() != uid {
        std::os::unix::fs::lchown(root, Some(uid), Some(uid))
            .with_context(|| format!("chown {}", root.display()))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(root)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

fn remove_if_empty(path: &Path, workspace: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir(path);
        }
        Ok(m) if m.len() == 0 => {
            let _ = std::fs::remove_file(path);
        }
        _ => {}
    }
    // Parents we may have created (e.g. `.git`) go too if now empty.
    if let Some(parent) = path
        .parent()
        .filter(|p| *p != workspace && p.starts_with(workspace))
    {
        let _ = std::fs::remove_dir(parent);
    }
}
