//! Host-side probes: a session's cgroups and processes (its "footprint"),
//! process and fd counts, and the checks that nothing survives a session.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// cgroup v1 controllers sandkeep creates a directory in per session.
const CONTROLLERS: &[&str] = &["memory", "pids", "cpu"];
/// First host uid of the per-session subordinate ranges (sandbox.md §3).
pub const SANDBOX_UID_BASE: u32 = 1_000_000;

/// A host process, as `/proc/<pid>/status` and `cmdline` describe it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub state: char,
    pub cmdline: String,
}

pub fn proc_info(pid: i32) -> Option<Proc> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    Some(Proc {
        pid,
        ppid: field("PPid:")?.parse().ok()?,
        uid: field("Uid:")?.split_whitespace().next()?.parse().ok()?,
        state: field("State:")?.chars().next()?,
        cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
    })
}

/// Every process on the host.
pub fn all_procs() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_info)
        .collect()
}

/// Host processes whose argv contains `marker`.
pub fn procs_with(marker: &str) -> Vec<Proc> {
    all_procs()
        .into_iter()
        .filter(|p| p.cmdline.contains(marker))
        .collect()
}

/// Alive and not a zombie.
pub fn is_running(pid: u32) -> bool {
    proc_info(pid as i32).is_some_and(|p| p.state != 'Z')
}

pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The cgroup directories (`<ctl>/sandkeep/<session>-<worker pid>-<n>`) of a session.
pub fn session_cgroups(session_id: &str) -> Vec<PathBuf> {
    let prefix = format!("{session_id}-");
    let mut found = Vec::new();
    for ctl in CONTROLLERS {
        let base = Path::new("/sys/fs/cgroup").join(ctl).join("sandkeep");
        if let Ok(dir) = std::fs::read_dir(&base) {
            found.extend(
                dir.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path()),
            );
        }
    }
    found.sort();
    found.dedup();
    found
}

/// What a live session holds on the host.
#[derive(Debug, Clone, Default)]
pub struct Footprint {
    pub cgroups: Vec<PathBuf>,
    pub procs: Vec<Proc>,
}

impl Footprint {
    /// The session's cgroups and every process in them (init, shell, calls).
    pub fn of(session_id: &str) -> Footprint {
        let cgroups = session_cgroups(session_id);
        let mut pids: Vec<i32> = cgroups
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Footprint {
            cgroups,
            procs: pids.into_iter().filter_map(proc_info).collect(),
        }
    }

    /// The session's init: the one process whose parent is outside the session.
    pub fn init(&self) -> Option<&Proc> {
        self.procs
            .iter()
            .find(|p| !self.procs.iter().any(|q| q.pid == p.ppid))
    }

    /// Panics unless a live session shows up on the host as expected: cgroups
    /// (when the host has them) and processes in the sandbox uid range.
    pub fn assert_live(&self, what: &str) {
        if !super::rig::has_cgroups() {
            return;
        }
        assert!(
            !self.cgroups.is_empty() && !self.procs.is_empty(),
            "{what}: a live session has no cgroup or no process on the host: {self:?}"
        );
        for p in &self.procs {
            assert!(
                p.uid >= SANDBOX_UID_BASE,
                "{what}: session process {p:?} runs as host uid {} (< {SANDBOX_UID_BASE})",
                p.uid
            );
        }
    }
}

/// Wait (≤ 10 s) until none of the footprint's processes and cgroups remain.
pub async fn assert_gone(test: &str, session_id: &str, before: &Footprint) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs: Vec<Proc> = before
            .procs
            .iter()
            .filter_map(|p| proc_info(p.pid).filter(|now| now.cmdline == p.cmdline))
            .collect();
        let cgroups = session_cgroups(session_id);
        if procs.is_empty() && cgroups.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{test}: session {session_id} left processes {procs:?} and cgroups {cgroups:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The workspace is removed and no temp entry named after the session remains.
pub async fn assert_no_leftover_dirs(session_id: &str, workspace: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while workspace.exists() {
        assert!(
            Instant::now() < deadline,
            "the workspace {} of ended session {session_id} was not removed",
            workspace.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for dir in ["/tmp", "/var/tmp", "/dev/shm", "/run", "/run/sandkeep"] {
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(session_id))
            .map(|e| e.path())
            .collect();
        assert!(
            leftovers.is_empty(),
            "temp entries of session {session_id} remain: {leftovers:?}"
        );
    }
}

/// Contents and mtime of a host file (`None` when it does not exist).
pub fn snapshot(path: &str) -> Option<(Vec<u8>, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((std::fs::read(path).ok()?, meta.modified().ok()?))
}
