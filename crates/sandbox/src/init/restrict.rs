//! The init restricts itself once the filesystem view is built; bash and every
//! other process of the session inherit these layers, and the file tools run under
//! them in the init itself.
//!
//! Order matters: securebits and the capability bounding set need CAP_SETPCAP, so
//! they go first; Landlock and seccomp need `no_new_privs`; the remaining
//! capabilities are cleared last.

use anyhow::{bail, Context};
use landlock::{
    Access, AccessFs, LandlockStatus, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, ABI,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Paths the init grants to itself and its descendants.
pub struct LandlockPaths {
    pub read_exec: Vec<PathBuf>,
    pub full: Vec<PathBuf>,
}

/// Highest ABI whose rights we request; the crate degrades best effort below it.
const LANDLOCK_TARGET: ABI = ABI::V6;

/// Apply all restriction layers, switching to `workload_uid` (also the gid; 0 =
/// stay) on the way; returns the Landlock ABI in force (0 = none).
pub fn restrict_self(paths: &LandlockPaths, workload_uid: u32) -> anyhow::Result<i32> {
    lock_securebits()?;
    drop_bounding_and_ambient()?;
    become_workload_user(workload_uid)?;
    // SAFETY: plain prctl calls.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        );
    }
    // The init holds the worker channel: keep same-uid processes from reading or
    // writing its memory through /proc/1/mem.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let abi = apply_landlock(paths)?;
    super::seccomp::install().context("installing the seccomp filter")?;
    clear_capabilities()?;
    Ok(abi)
}

/// Switch every uid and gid to the workload's and drop supplementary groups.
/// Needs CAP_SETUID/CAP_SETGID, which we still hold; `SECBIT_NO_SETUID_FIXUP`
/// keeps the kernel from touching capabilities here, and [`clear_capabilities`]
/// drops them all at the end.
fn become_workload_user(id: u32) -> anyhow::Result<()> {
    if id == 0 {
        return Ok(());
    }
    // SAFETY: plain syscalls on this single-threaded process (raw syscalls, so no
    // libc set*id broadcast machinery is involved).
    let step = unsafe {
        if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0 {
            "setgroups"
        } else if libc::syscall(libc::SYS_setresgid, id, id, id) != 0 {
            "setresgid"
        } else if libc::syscall(libc::SYS_setresuid, id, id, id) != 0 {
            "setresuid"
        } else {
            return Ok(());
        }
    };
    bail!(
        "{step} to the workload's id {id}: {}",
        std::io::Error::last_os_error()
    )
}

fn lock_securebits() -> anyhow::Result<()> {
    // NOROOT: uid 0 gains no capabilities on exec; NO_SETUID_FIXUP; KEEP_CAPS off;
    // NO_CAP_AMBIENT_RAISE; all locked.
    const BITS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80;
    // SAFETY: plain prctl call.
    if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, BITS, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_SECUREBITS): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Highest capability number of this kernel (read once, in the zygote).
static LAST_CAP: OnceLock<libc::c_ulong> = OnceLock::new();

/// Read per-host facts now, so every session init reuses them.
pub fn prepare() {
    last_cap();
}

fn last_cap() -> libc::c_ulong {
    *LAST_CAP.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

fn drop_bounding_and_ambient() -> anyhow::Result<()> {
    let last_cap = last_cap();
    for cap in 0..=last_cap {
        // SAFETY: plain prctl call.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            bail!(
                "dropping capability {cap} from the bounding set: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    // SAFETY: plain prctl call.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn clear_capabilities() -> anyhow::Result<()> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and a two-element data array as capset(2) v3 expects.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) } != 0 {
        bail!(
            "capset (dropping all capabilities): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn apply_landlock(paths: &LandlockPaths) -> anyhow::Result<i32> {
    let all = AccessFs::from_all(LANDLOCK_TARGET);
    let read_exec = AccessFs::from_read(LANDLOCK_TARGET);
    let device = read_exec | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    let mut ruleset = Ruleset::default().handle_access(all)?.create()?;
    ruleset = ruleset.add_rule(PathBeneath::new(PathFd::new("/")?, AccessFs::ReadDir))?;
    for p in &paths.read_exec {
        ruleset = add_existing(ruleset, p, read_exec)?;
    }
    for p in &paths.full {
        ruleset = add_existing(ruleset, p, all)?;
    }
    ruleset = add_existing(ruleset, Path::new("/proc"), read_exec | AccessFs::WriteFile)?;
    ruleset = add_existing(ruleset, Path::new("/dev"), device)?;
    ruleset = add_existing(ruleset, Path::new("/dev/shm"), all)?;
    let status = ruleset
        .restrict_self()
        .context("enforcing the Landlock ruleset")?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Ok(0);
    }
    Ok(match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as i32,
        _ => 0,
    })
}

fn add_existing(
    ruleset: landlock::RulesetCreated,
    path: &Path,
    access: landlock::BitFlags<AccessFs>,
) -> anyhow::Result<landlock::RulesetCreated> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(ruleset);
    };
    // Directory-only rights are invalid on a file beneath rule.
    let access = if meta.is_dir() {
        access
    } else {
        access & AccessFs::from_file(LANDLOCK_TARGET)
    };
    match PathFd::new(path) {
        Ok(fd) => Ok(ruleset.add_rule(PathBeneath::new(fd, access))?),
        Err(_) => Ok(ruleset),
    }
}
