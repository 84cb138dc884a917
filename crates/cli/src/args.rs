//! Command-line interface. Worker flags and their environment variables mirror
//! `ant beta:worker poll|run` (protocol.md §10.2); the rest is sandkeep's own.

use crate::duration;
use crate::logging::LogFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "sandkeep",
    version,
    about = "Self-hosted sandbox worker for Claude Managed Agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Worker(WorkerCmd::Poll(a)) => a.common.log_format,
            Command::Worker(WorkerCmd::Run(a)) => a.common.log_format,
            Command::Emulator(a) => a.log_format,
            _ => LogFormat::Text,
        }
    }

    /// Default log level: the demo keeps its own output readable unless `-v`.
    pub fn default_log_level(&self) -> &'static str {
        match &self.command {
            Command::Demo(a) if !a.verbose => "warn",
            Command::Doctor(_) => "warn",
            _ => "info",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve sessions from a self-hosted environment (drop-in for `ant beta:worker`).
    #[command(subcommand)]
    Worker(WorkerCmd),
    /// Run the control-plane emulator (a test double of the Anthropic API).
    Emulator(EmulatorArgs),
    /// Run the end-to-end demo on a copy of a real directory, against an embedded emulator.
    Demo(DemoArgs),
    /// Report what isolation this host supports, and whether the default policy can run.
    Doctor(DoctorArgs),
}

#[derive(Debug, Subcommand)]
pub enum WorkerCmd {
    /// Long-poll the environment and serve each claimed session.
    Poll(PollArgs),
    /// Serve one already-claimed work item and exit (e.g. inside an --on-work sandbox).
    Run(RunArgs),
}

/// Flags shared by `poll` and `run`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Self-hosted environment id (env_…).
    #[arg(long, env = "ANTHROPIC_ENVIRONMENT_ID")]
    pub environment_id: Option<String>,
    /// Environment key (Console → Generate environment key).
    #[arg(long, env = "ANTHROPIC_ENVIRONMENT_KEY", hide_env_values = true)]
    pub environment_key: Option<String>,
    /// API base URL.
    #[arg(
        long,
        env = "ANTHROPIC_BASE_URL",
        default_value = "https://api.anthropic.com"
    )]
    pub base_url: String,
    /// Base working directory; each session gets <workdir>/sessions/<session_id>.
    #[arg(long, default_value = ".")]
    pub workdir: PathBuf,
    /// Use the SDK's shared layout: every session works directly in --workdir.
    #[arg(long)]
    pub shared_workdir: bool,
    /// Keep per-session directories after the session ends.
    #[arg(long)]
    pub keep_workspace: bool,
    /// Stop a session this long after its turn ended (Go duration; 0 disables).
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub max_idle: Duration,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Sandbox and tool policy. Flags override the `--policy` file.
#[derive(Debug, Args, Clone, Default)]
pub struct PolicyArgs {
    /// Policy file (TOML); see docs/policy.md.
    #[arg(long, env = "SANDKEEP_POLICY")]
    pub policy: Option<PathBuf>,
    /// Isolation level: `process` (kernel sandbox per session, default) or `none` (host, SDK-like).
    #[arg(long, value_enum)]
    pub isolation: Option<IsolationArg>,
    /// Network inside the sandbox: `off` (loopback only, default) or `host`.
    #[arg(long, value_enum)]
    pub network: Option<NetworkArg>,
    /// Memory limit per session, MiB.
    #[arg(long)]
    pub memory_mib: Option<u64>,
    /// Process limit per session.
    #[arg(long)]
    pub pids: Option<u64>,
    /// CPU quota per session, in cores.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Size of the session's /tmp, MiB.
    #[arg(long)]
    pub tmp_mib: Option<u64>,
    /// Tools this worker executes (comma-separated), e.g. `read,glob,grep` for read-only.
    #[arg(long, value_delimiter = ',')]
    pub allow_tools: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum IsolationArg {
    None,
    Process,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum NetworkArg {
    Off,
    Host,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Worker id sent as Anthropic-Worker-ID (default <hostname>-<random hex>).
    #[arg(long, env = "ANTHROPIC_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Script run for each claimed item instead of the built-in runner (`in-process` = built-in).
    #[arg(long)]
    pub on_work: Option<PathBuf>,
    /// Sessions served at once by this process (default: CPUs × 4).
    #[arg(long)]
    pub max_sessions: Option<usize>,
    /// On SIGTERM/SIGINT, how long in-flight sessions may take to finish.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub drain_timeout: Duration,
    /// Exit once the queue is empty instead of waiting for more work.
    #[arg(long)]
    pub drain: bool,
    /// Reclaim polled-but-unacknowledged items older than this (ms).
    #[arg(long)]
    pub reclaim_older_than_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Claimed work item id.
    #[arg(long, env = "ANTHROPIC_WORK_ID")]
    pub work_id: Option<String>,
    /// The item's session id.
    #[arg(long, env = "ANTHROPIC_SESSION_ID")]
    pub session_id: Option<String>,
    /// File holding the work secret (must not be readable or writable by others).
    #[arg(long, env = "ANTHROPIC_WORK_SECRET_FILE")]
    pub work_secret_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Admin (operator) API key accepted by the emulator.
    #[arg(
        long,
        env = "SANDKEEP_EMULATOR_ADMIN_KEY",
        default_value = "sk-emu-admin",
        hide_env_values = true
    )]
    pub admin_key: String,
    /// Lease TTL of work items, seconds.
    #[arg(long, default_value_t = 300)]
    pub lease_ttl: u64,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory to copy into the session workspace (never modified).
    #[arg(long, default_value = ".")]
    pub source: PathBuf,
    /// Show worker logs.
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
}
