//! The per-session tool host the worker talks to.

use crate::policy::{Isolation, Policy};
use crate::process::SandboxSession;
use sandkeep_tools::{ToolConfig, ToolOutput, Toolset};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What the worker knows about a session when it starts its tool host.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub session_id: String,
    /// Host directory of the session's workspace (created by the worker).
    pub workspace: PathBuf,
    /// Extra roots the file tools may read (e.g. a shared skills directory).
    pub allowed_roots: Vec<PathBuf>,
}

struct Job {
    name: String,
    input: Value,
    deadline: Option<Instant>,
    reply: oneshot::Sender<ToolOutput>,
}

/// Where a session's calls execute.
enum Backend {
    InProcess(Box<Toolset>),
    Sandbox(Box<SandboxSession>),
}

impl Backend {
    fn call(&mut self, name: &str, input: Value, deadline: Option<Instant>) -> ToolOutput {
        match self {
            Backend::InProcess(tools) => tools.call(name, &input, deadline),
            Backend::Sandbox(sandbox) => sandbox.call(name, input, deadline),
        }
    }

    fn close(&mut self) {
        match self {
            Backend::InProcess(tools) => tools.close(),
            Backend::Sandbox(sandbox) => sandbox.close(),
        }
    }
}

/// A running tool host for one session.
pub struct SessionExecutor {
    policy: Policy,
    jobs: Option<std_mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SessionExecutor {
    /// Start the session's tool host. Fails (closed) if the policy's isolation
    /// cannot be provided on this host.
    pub fn start(policy: &Policy, spec: &SessionSpec) -> anyhow::Result<Self> {
        match policy.isolation {
            Isolation::None => Self::start_in_process(policy, spec),
            Isolation::Process => {
                let sandbox = SandboxSession::start(policy, spec)?;
                Self::start_thread(policy, spec, Backend::Sandbox(Box::new(sandbox)))
            }
        }
    }

    fn start_in_process(policy: &Policy, spec: &SessionSpec) -> anyhow::Result<Self> {
        let mut config = ToolConfig::new(&spec.workspace);
        config.allowed_roots = spec.allowed_roots.clone();
        config.read_only_roots = policy
            .read_only_paths
            .iter()
            .map(|p| spec.workspace.join(p))
            .collect();
        config.max_bash_timeout = policy.max_call_timeout_ms.map(Duration::from_millis);
        Self::start_thread(
            policy,
            spec,
            Backend::InProcess(Box::new(Toolset::new(config))),
        )
    }

    /// Calls run one at a time on a dedicated thread (both backends block).
    fn start_thread(
        policy: &Policy,
        spec: &SessionSpec,
        mut backend: Backend,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("tools-{}", spec.session_id))
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    let out = backend.call(&job.name, job.input, job.deadline);
                    let _ = job.reply.send(out);
                }
                backend.close();
            })?;
        Ok(Self {
            policy: policy.clone(),
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Whether this worker executes `name` (the six toolset tools). A tool that the
    /// policy denies is still "owned": the model gets an error naming the rule.
    pub fn owns(&self, name: &str) -> bool {
        Toolset::owns(name)
    }

    /// Run one call; `timeout` is the runner's outer bound.
    pub async fn call(&self, name: &str, input: Value, timeout: Duration) -> ToolOutput {
        if !self.policy.allowed_tools.iter().any(|t| t == name) {
            return ToolOutput::error(format!(
                "{name}: denied by policy: allowed_tools = {:?} does not include \"{name}\"",
                self.policy.allowed_tools
            ));
        }
        let Some(jobs) = &self.jobs else {
            return ToolOutput::error(format!("{name}: the session's tool host is closed"));
        };
        let (reply, rx) = oneshot::channel();
        let job = Job {
            name: name.to_string(),
            input,
            deadline: Some(Instant::now() + timeout),
            reply,
        };
        if jobs.send(job).is_err() {
            return ToolOutput::error(format!("{name}: the session's tool host is gone"));
        }
        rx.await.unwrap_or_else(|_| {
            ToolOutput::error(format!("{name}: the session's tool host crashed"))
        })
    }

    /// Stop the tool host: kill the shell and wait for the thread. Idempotent.
    pub async fn close(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for SessionExecutor {
    /// Without `close`, dropping the job sender ends the thread, which closes the
    /// backend (the sandbox's init is killed and its cgroups removed) on its own.
    fn drop(&mut self) {
        self.jobs.take();
    }
}
