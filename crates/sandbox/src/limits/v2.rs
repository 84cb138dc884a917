//! cgroup v2: a child of our own cgroup, used only when the memory and pids
//! controllers are already delegated to it (`cgroup.subtree_control`) and writable.

use super::CgroupFiles;
use crate::policy::Policy;
use std::fs;
use std::path::PathBuf;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Our own cgroup directory on a cgroup2 mount at `/sys/fs/cgroup`, if any.
pub fn own_cgroup_dir() -> Option<PathBuf> {
    let st = nix::sys::statfs::statfs("/sys/fs/cgroup").ok()?;
    if st.filesystem_type().0 as i64 != CGROUP2_SUPER_MAGIC {
        return None;
    }
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(PathBuf::from("/sys/fs/cgroup").join(rel.trim_start_matches('/')))
}

/// Whether `memory` and `pids` are delegated below our cgroup.
pub fn delegated() -> Option<PathBuf> {
    let dir = own_cgroup_dir()?;
    let ctl = fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
    let has = |c: &str| ctl.split_whitespace().any(|x| x == c);
    (has("memory") && has("pids")).then_some(dir)
}

pub fn create(policy: &Policy, name: &str) -> Option<CgroupFiles> {
    let parent = delegated()?;
    let dir = parent.join(format!("sandkeep-{name}"));
    fs::create_dir(&dir).ok()?;
    let result = (|| -> std::io::Result<()> {
        fs::write(
            dir.join("memory.max"),
            policy.memory_mib.saturating_mul(1 << 20).to_string(),
        )?;
        let _ = fs::write(dir.join("memory.swap.max"), "0");
        fs::write(dir.join("pids.max"), policy.pids.to_string())?;
        if dir.join("cpu.max").exists() {
            let quota = ((policy.cpus * 100_000.0).ceil() as u64).max(1000);
            fs::write(dir.join("cpu.max"), format!("{quota} 100000"))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Some(CgroupFiles {
            dirs: vec![dir.clone()],
            oom_file: dir.join("memory.events"),
            pids_dir: dir,
        }),
        Err(e) => {
            tracing::debug!(error = %e, "cgroup v2 not usable");
            let _ = fs::remove_dir(&dir);
            None
        }
    }
}
