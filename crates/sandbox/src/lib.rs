//! Where a session's tools run.
//!
//! [`SessionExecutor`] is the one boundary the worker sees: it starts a session's
//! tool host according to the [`policy::Policy`], runs calls one at a time, and
//! tears everything down on [`SessionExecutor::close`].
//!
//! * `none`: the tools run on the host, on a dedicated thread of the worker
//!   (SDK-compatible; path confinement only).
//! * `process`: one kernel sandbox per session (namespaces, mounts, Landlock,
//!   seccomp, cgroups); its PID-1 init runs the same tools inside (see `init`).
//!
//! Host side: [`spawn`] (id maps, spawn through the per-worker `zygote`), [`process`] (session lifecycle),
//! [`limits`] (cgroups / rlimits), [`probe`] (doctor, fail-closed check).
//! Inside: `init` (filesystem, restrictions, call loop).

pub mod channel;
pub mod executor;
mod init;
pub mod limits;
pub mod policy;
pub mod probe;
pub mod process;
pub mod spawn;
mod uid_slots;
mod zygote;

pub use executor::{SessionExecutor, SessionSpec};
pub use init::init_main;
pub use policy::{load_policy, Isolation, Policy};
pub use probe::{probe_host, HostReport};

/// Hidden first argument that makes the `sandkeep` binary act as a sandbox init.
pub const INIT_ARG: &str = "__sandbox-init";
