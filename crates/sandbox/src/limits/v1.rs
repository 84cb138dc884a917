//! cgroup v1: one directory per controller under `/sys/fs/cgroup/<ctl>/sandkeep/`.

use super::CgroupFiles;
use crate::policy::Policy;
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
const PERIOD_US: u64 = 100_000;

/// Create memory, pids and cpu groups; `None` if v1 is absent or not writable.
pub fn create(policy: &Policy, name: &str) -> Option<CgroupFiles> {
    let base = |ctl: &str| Path::new(ROOT).join(ctl);
    if !base("memory").join("memory.limit_in_bytes").exists()
        || !base("pids").join("cgroup.procs").exists()
    {
        return None;
    }
    let mut dirs = Vec::new();
    let result = (|| -> std::io::Result<(PathBuf, PathBuf)> {
        let memory = make(&base("memory"), name, &mut dirs)?;
        let bytes = policy.memory_mib.saturating_mul(1 << 20).to_string();
        fs::write(memory.join("memory.limit_in_bytes"), &bytes)?;
        // Swap 0: memory+swap capped at the memory limit (only with swap accounting).
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            fs::write(memsw, &bytes)?;
        }
        let pids = make(&base("pids"), name, &mut dirs)?;
        fs::write(pids.join("pids.max"), policy.pids.to_string())?;
        if base("cpu").join("cpu.cfs_quota_us").exists() {
            let cpu = make(&base("cpu"), name, &mut dirs)?;
            fs::write(cpu.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
            let quota = ((policy.cpus * PERIOD_US as f64).ceil() as u64).max(1000);
            fs::write(cpu.join("cpu.cfs_quota_us"), quota.to_string())?;
        }
        Ok((memory.join("memory.oom_control"), pids))
    })();
    match result {
        Ok((oom_file, pids_dir)) => Some(CgroupFiles {
            dirs,
            oom_file,
            pids_dir,
        }),
        Err(e) => {
            tracing::debug!(error = %e, "cgroup v1 not usable");
            for d in dirs.iter().rev() {
                let _ = fs::remove_dir(d);
            }
            None
        }
    }
}

fn make(controller_root: &Path, name: &str, made: &mut Vec<PathBuf>) -> std::io::Result<PathBuf> {
    let parent = controller_root.join("sandkeep");
    fs::create_dir_all(&parent)?;
    let dir = parent.join(name);
    fs::create_dir(&dir)?;
    made.push(dir.clone());
    Ok(dir)
}
