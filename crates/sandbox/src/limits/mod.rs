//! Per-session resource limits: cgroup v2 where delegated, else cgroup v1, else
//! rlimits. The backend in force is logged per session and reported by `doctor`.

mod pids;
mod v1;
mod v2;

pub use pids::PidsSnapshot;

use crate::channel::RlimitPlan;
use crate::policy::Policy;
use std::path::PathBuf;

/// Which mechanism limits a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsBackend {
    CgroupV2,
    CgroupV1,
    Rlimits,
}

impl std::fmt::Display for LimitsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitsBackend::CgroupV2 => "cgroup v2",
            LimitsBackend::CgroupV1 => "cgroup v1",
            LimitsBackend::Rlimits => "rlimits (no writable cgroup)",
        })
    }
}

/// The limits of one session; removed by [`SessionLimits::destroy`].
#[derive(Debug)]
pub struct SessionLimits {
    pub backend: LimitsBackend,
    /// Cgroup directories (one per v1 controller, or the single v2 group).
    dirs: Vec<PathBuf>,
    /// Where the OOM-kill counter lives (`memory.oom_control` / `memory.events`).
    oom_file: Option<PathBuf>,
    /// The pids controller's directory (`pids.current`, `pids.events`).
    pids_dir: Option<PathBuf>,
    rlimits: Option<RlimitPlan>,
    pub memory_mib: u64,
    /// The session's process limit (cgroup `pids.max` or `RLIMIT_NPROC`).
    pub pids_max: u64,
}

/// What a cgroup backend created for one session.
struct CgroupFiles {
    dirs: Vec<PathBuf>,
    oom_file: PathBuf,
    pids_dir: PathBuf,
}

impl SessionLimits {
    /// Create the session's cgroups (or plan rlimits). `name` must be unique on the host.
    pub fn create(policy: &Policy, name: &str) -> Self {
        if let Some(files) = v2::create(policy, name) {
            return Self::cgroups(LimitsBackend::CgroupV2, files, policy);
        }
        if let Some(files) = v1::create(policy, name) {
            return Self::cgroups(LimitsBackend::CgroupV1, files, policy);
        }
        let plan = RlimitPlan {
            address_space_bytes: policy.memory_mib.saturating_mul(1 << 20),
            nproc: policy.pids,
        };
        Self {
            backend: LimitsBackend::Rlimits,
            dirs: Vec::new(),
            oom_file: None,
            pids_dir: None,
            rlimits: Some(plan),
            memory_mib: policy.memory_mib,
            pids_max: policy.pids,
        }
    }

    fn cgroups(backend: LimitsBackend, files: CgroupFiles, policy: &Policy) -> Self {
        Self {
            backend,
            dirs: files.dirs,
            oom_file: Some(files.oom_file),
            pids_dir: Some(files.pids_dir),
            rlimits: None,
            memory_mib: policy.memory_mib,
            pids_max: policy.pids,
        }
    }

    /// Open the files through which the init joins the session's cgroups: on v1
    /// `tasks` (writing "0" there moves just the caller, without the global lock a
    /// whole-process move takes), on v2 `cgroup.procs`. Opened here, so the kernel
    /// checks the worker's credentials, not those of the init's user namespace.
    pub fn attach_files(&self) -> anyhow::Result<Vec<std::os::fd::OwnedFd>> {
        let name = match self.backend {
            LimitsBackend::CgroupV1 => "tasks",
            _ => "cgroup.procs",
        };
        self.dirs
            .iter()
            .map(|dir| {
                let path = dir.join(name);
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(Into::into)
                    .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))
            })
            .collect()
    }

    /// Rlimits the init applies to itself when no cgroup is available.
    pub fn rlimit_plan(&self) -> Option<RlimitPlan> {
        self.rlimits
    }

    /// OOM kills recorded so far in the session's memory cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some(file) = &self.oom_file else { return 0 };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Kill anything left in the cgroups and remove them. Idempotent.
    pub fn destroy(&mut self) {
        for dir in self.dirs.drain(..) {
            remove_cgroup(&dir);
        }
        self.oom_file = None;
        self.pids_dir = None;
    }
}

impl Drop for SessionLimits {
    fn drop(&mut self) {
        self.destroy();
    }
}

fn remove_cgroup(dir: &std::path::Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..200 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill of a leftover process of this session's cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
    tracing::warn!(cgroup = %dir.display(), "could not remove the session cgroup");
}

/// Make a session id safe as a cgroup directory name.
pub fn cgroup_name(session_id: &str, unique: u64) -> String {
    let clean: String = session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{clean}-{}-{unique}", std::process::id())
}

/// The cgroup v2 directory with memory+pids delegated below it, if any.
pub fn v2_delegated() -> Option<PathBuf> {
    v2::delegated()
}
