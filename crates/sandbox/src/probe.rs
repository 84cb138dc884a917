//! What this host can do (`sandkeep doctor`), and the fail-closed check that
//! `SessionExecutor::start` runs before building a sandbox.

use crate::limits::LimitsBackend;
use crate::policy::{Isolation, Policy};
use std::fmt;
use std::path::Path;

/// Host capabilities relevant to `isolation = "process"`.
#[derive(Debug, Clone)]
pub struct HostReport {
    /// A user namespace (with pid/mount/net) could be created; else the error.
    pub user_namespaces: Result<(), String>,
    pub max_user_namespaces: Option<u64>,
    pub unprivileged_userns_clone: Option<u64>,
    pub apparmor_restrict_userns: Option<u64>,
    /// Landlock ABI of the kernel (0 = unavailable).
    pub landlock_abi: i32,
    pub seccomp: bool,
    /// Resource-limit backend a session would get.
    pub limits: LimitsBackend,
    pub cgroup_detail: String,
    pub bash: bool,
    pub root: bool,
}

/// Probe the host (cheap: one short-lived namespaced child).
pub fn probe_host() -> HostReport {
    let sysctl = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let (limits, cgroup_detail) = cgroup_support();
    HostReport {
        user_namespaces: try_user_namespace(),
        max_user_namespaces: sysctl("/proc/sys/user/max_user_namespaces"),
        unprivileged_userns_clone: sysctl("/proc/sys/kernel/unprivileged_userns_clone"),
        apparmor_restrict_userns: sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
        landlock_abi: landlock_abi(),
        // SAFETY: PR_GET_SECCOMP only reads our own mode; EINVAL means no seccomp support.
        seccomp: unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0,
        limits,
        cgroup_detail,
        bash: Path::new("/bin/bash").exists(),
        // SAFETY: geteuid cannot fail.
        root: unsafe { libc::geteuid() } == 0,
    }
}

impl HostReport {
    /// Whether `policy` can be enforced here; the error names what is missing and the fix.
    pub fn supports(&self, policy: &Policy) -> Result<(), String> {
        if policy.isolation == Isolation::None {
            return Ok(());
        }
        if let Err(why) = &self.user_namespaces {
            let fix = if self.max_user_namespaces == Some(0) {
                "raise the limit: `sysctl -w user.max_user_namespaces=15000`"
            } else if self.unprivileged_userns_clone == Some(0) {
                "allow them: `sysctl -w kernel.unprivileged_userns_clone=1`"
            } else if self.apparmor_restrict_userns == Some(1) {
                "AppArmor blocks them: `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile granting `userns`)"
            } else {
                "run as root or enable unprivileged user namespaces"
            };
            return Err(format!("user namespaces are unavailable ({why}); {fix}"));
        }
        if !self.seccomp {
            return Err("seccomp is unavailable in this kernel (CONFIG_SECCOMP_FILTER); use a kernel with seccomp".into());
        }
        if !self.bash {
            return Err("/bin/bash does not exist; install bash".into());
        }
        Ok(())
    }
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let rows: Vec<(&str, String)> = vec![
            (
                "running as",
                if self.root {
                    "root (per-session uid ranges)".into()
                } else {
                    "unprivileged user (single-uid map)".into()
                },
            ),
            (
                "user namespaces",
                match &self.user_namespaces {
                    Ok(()) => "yes".into(),
                    Err(e) => format!("NO: {e}"),
                },
            ),
            ("user.max_user_namespaces", opt(self.max_user_namespaces)),
            (
                "kernel.unprivileged_userns_clone",
                opt(self.unprivileged_userns_clone),
            ),
            (
                "kernel.apparmor_restrict_unprivileged_userns",
                opt(self.apparmor_restrict_userns),
            ),
            (
                "landlock",
                if self.landlock_abi > 0 {
                    format!("ABI {}", self.landlock_abi)
                } else {
                    "unavailable (second layer off)".into()
                },
            ),
            (
                "seccomp",
                if self.seccomp {
                    "yes".into()
                } else {
                    "NO".into()
                },
            ),
            (
                "resource limits",
                format!("{} — {}", self.limits, self.cgroup_detail),
            ),
            (
                "/bin/bash",
                if self.bash {
                    "yes".into()
                } else {
                    "MISSING".into()
                },
            ),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (i, (k, v)) in rows.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{k:<width$}  {v}")?;
        }
        Ok(())
    }
}

fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the version query takes a null attr and size 0.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0) as i32
}

/// Actually create the namespaces a session uses, in a child that exits at once.
fn try_user_namespace() -> Result<(), String> {
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::SIGCHLD;
    // SAFETY: fork-like clone; the child only calls _exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: child side of the clone.
        unsafe { libc::_exit(0) };
    }
    if pid < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
    Ok(())
}

/// Whether a child group can be created (and removed again) under `controller`.
fn can_create_group(controller: &Path) -> bool {
    let probe = controller.join(format!("sandkeep-probe-{}", std::process::id()));
    let created = std::fs::create_dir(&probe).is_ok();
    if created {
        let _ = std::fs::remove_dir(&probe);
    }
    created
}

fn cgroup_support() -> (LimitsBackend, String) {
    if let Some(dir) = crate::limits::v2_delegated() {
        return (
            LimitsBackend::CgroupV2,
            format!("memory+pids delegated at {}", dir.display()),
        );
    }
    let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        && Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists();
    if v1 {
        // cgroupfs directories are mode 0555 even where root may create groups, so
        // access(W_OK) says nothing: try what the sandbox will do.
        let writable = ["memory", "pids"]
            .iter()
            .all(|ctl| can_create_group(&Path::new("/sys/fs/cgroup").join(ctl)));
        if writable {
            return (
                LimitsBackend::CgroupV1,
                "memory, pids, cpu controllers writable under /sys/fs/cgroup".into(),
            );
        }
        return (
            LimitsBackend::Rlimits,
            "cgroup v1 present but not writable by this user".into(),
        );
    }
    (
        LimitsBackend::Rlimits,
        "no delegated cgroup v2 and no writable cgroup v1".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(max: Option<u64>, clone: Option<u64>, apparmor: Option<u64>) -> HostReport {
        HostReport {
            user_namespaces: Err("Operation not permitted (os error 1)".into()),
            max_user_namespaces: max,
            unprivileged_userns_clone: clone,
            apparmor_restrict_userns: apparmor,
            landlock_abi: 0,
            seccomp: true,
            limits: LimitsBackend::Rlimits,
            cgroup_detail: String::new(),
            bash: true,
            root: false,
        }
    }

    #[test]
    fn missing_user_namespaces_fail_closed_naming_the_sysctl() {
        let process = Policy::default();
        let err = blocked(Some(0), None, None).supports(&process).unwrap_err();
        assert!(
            err.contains("sysctl -w user.max_user_namespaces=15000"),
            "{err}"
        );
        let err = blocked(Some(100), Some(0), None)
            .supports(&process)
            .unwrap_err();
        assert!(err.contains("kernel.unprivileged_userns_clone=1"), "{err}");
        let err = blocked(Some(100), None, Some(1))
            .supports(&process)
            .unwrap_err();
        assert!(
            err.contains("apparmor_restrict_unprivileged_userns=0"),
            "{err}"
        );
        let none = Policy {
            isolation: Isolation::None,
            ..Policy::default()
        };
        assert!(blocked(Some(0), None, None).supports(&none).is_ok());
    }

    #[test]
    fn report_renders_as_a_table() {
        let text = blocked(Some(0), None, None).to_string();
        assert!(
            text.lines()
                .any(|l| l.starts_with("user namespaces") && l.contains("NO")),
            "{text}"
        );
    }
}
