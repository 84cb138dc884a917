//! sandbox.md §4 attack and failure cases, end to end: the real `sandkeep worker
//! poll --isolation process` binary (network off) against the real emulator over
//! HTTP. Tool calls are posted as agent-side events (or come from a scenario),
//! results are read from the session's event log, and the host is inspected
//! afterwards (files, processes, cgroups, fds).
//!
//! Every worker runs with canary credentials in its environment; each test ends
//! with `Rig::finish`, which terminates its sessions, checks that nothing of them
//! survived on the host and that no canary or the environment key reached a tool
//! result or the worker's log. When `sandkeep doctor` says the host cannot
//! sandbox, each test prints `SKIP` and returns.

mod common;

#[path = "isolation/host.rs"]
mod host;
#[path = "isolation/rig.rs"]
mod rig;

#[path = "isolation/fail_closed.rs"]
mod fail_closed;
#[path = "isolation/filesystem.rs"]
mod filesystem;
#[path = "isolation/lifecycle.rs"]
mod lifecycle;
#[path = "isolation/network.rs"]
mod network;
#[path = "isolation/processes.rs"]
mod processes;
#[path = "isolation/resources.rs"]
mod resources;
#[path = "isolation/secrets.rs"]
mod secrets;
