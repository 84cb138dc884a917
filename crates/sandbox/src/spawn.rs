//! Host side of sandbox creation: one raw `clone()` into fresh namespaces, the
//! uid/gid maps, cgroup placement, then release of the child, which execs the init.
//!
//! The worker is multi-threaded, so between `clone` and `execve` the child only
//! makes async-signal-safe raw calls (`read`, `dup2`, `fcntl`, `execve`, `_exit`)
//! on memory prepared before the clone.

use crate::channel::INIT_CHANNEL_FD;
use anyhow::{bail, Context};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// How the namespaces' users map onto host users.
#[derive(Debug, Clone, Copy)]
pub enum IdMap {
    /// Host root: ns 0..65536 → host `base..base+65536` (a per-session range).
    Range { base: u32 },
    /// Unprivileged: ns 0 → the caller's own uid/gid, `setgroups` denied.
    Single { uid: u32, gid: u32 },
}

impl IdMap {
    /// The host uid that ns-root maps to (owner of the workspace inside).
    pub fn root_host_uid(&self) -> u32 {
        match *self {
            IdMap::Range { base } => base,
            IdMap::Single { uid, .. } => uid,
        }
    }
}

/// A freshly started init: its host pid and the worker's end of the channel.
pub struct SpawnedInit {
    pub pid: i32,
    pub channel: UnixStream,
}

/// Clone the init into new namespaces and release it once `attach` (cgroup
/// placement) succeeded. The child execs `exe __sandbox-init` with an empty environment.
pub fn spawn_init(
    exe: &Path,
    new_netns: bool,
    ids: IdMap,
    attach: impl FnOnce(i32) -> anyhow::Result<()>,
) -> anyhow::Result<SpawnedInit> {
    let (ours, theirs) = UnixStream::pair().context("creating the sandbox channel")?;
    let (sync_read, sync_write) = cloexec_pipe()?;
    let exe_c = CString::new(exe.as_os_str().as_encoded_bytes())
        .context("init executable path contains NUL")?;
    let arg1 = CString::new(crate::INIT_ARG).expect("static string");
    let argv = [exe_c.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWCGROUP;
    if new_netns {
        flags |= libc::CLONE_NEWNET;
    }
    let child_sock = theirs.as_raw_fd();
    let sync_fd = sync_read.as_raw_fd();
    // SAFETY: fork-like clone (no CLONE_VM, no new stack): the child gets a private
    // copy of memory and only runs the raw calls below before execve or _exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: child side; every pointer was prepared before the clone.
        unsafe {
            let mut byte = 0u8;
            if libc::read(sync_fd, (&mut byte as *mut u8).cast(), 1) != 1 {
                libc::_exit(126);
            }
            // Become ns-root: our host uid is not mapped in a range map, and only a
            // mapped uid 0 keeps its capabilities across execve. Raw syscalls,
            // because glibc's wrappers signal the (absent) sibling threads.
            let ok = (matches!(ids, IdMap::Single { .. })
                || libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>())
                    == 0)
                && libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32) == 0
                && libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) == 0;
            if !ok {
                libc::_exit(125);
            }
            if child_sock == INIT_CHANNEL_FD {
                libc::fcntl(child_sock, libc::F_SETFD, 0);
            } else if libc::dup2(child_sock, INIT_CHANNEL_FD) < 0 {
                libc::_exit(126);
            }
            libc::execve(exe_c.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        let err = std::io::Error::last_os_error();
        bail!("{}", clone_error_hint(&err));
    }
    let pid = pid as i32;
    drop(sync_read);
    drop(theirs);
    let released = write_id_maps(pid, ids)
        .and_then(|()| attach(pid))
        .and_then(|()| {
            let n = unsafe { libc::write(sync_write.as_raw_fd(), b"g".as_ptr().cast(), 1) };
            if n != 1 {
                bail!(
                    "releasing the sandbox init: {}",
                    std::io::Error::last_os_error()
                );
            }
            Ok(())
        });
    if let Err(e) = released {
        kill_and_reap(pid);
        return Err(e);
    }
    Ok(SpawnedInit { pid, channel: ours })
}

fn write_id_maps(pid: i32, ids: IdMap) -> anyhow::Result<()> {
    let proc = format!("/proc/{pid}");
    let (uid_map, gid_map) = match ids {
        IdMap::Range { base } => (format!("0 {base} 65536\n"), format!("0 {base} 65536\n")),
        IdMap::Single { uid, gid } => {
            std::fs::write(format!("{proc}/setgroups"), "deny")
                .context("writing setgroups of the sandbox")?;
            (format!("0 {uid} 1\n"), format!("0 {gid} 1\n"))
        }
    };
    std::fs::write(format!("{proc}/uid_map"), uid_map).context("writing uid_map of the sandbox")?;
    std::fs::write(format!("{proc}/gid_map"), gid_map).context("writing gid_map of the sandbox")?;
    Ok(())
}

fn clone_error_hint(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "creating the sandbox namespaces failed ({err}): user namespaces are blocked for this user; \
             enable them (`sysctl -w kernel.unprivileged_userns_clone=1`, or on Ubuntu \
             `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`) or run as root"
        ),
        Some(libc::ENOSPC) | Some(libc::EUSERS) => format!(
            "creating the sandbox namespaces failed ({err}): the namespace limit is reached; \
             raise it with `sysctl -w user.max_user_namespaces=15000`"
        ),
        Some(libc::EINVAL) => format!("creating the sandbox namespaces failed ({err}): this kernel lacks a namespace type"),
        _ => format!("creating the sandbox namespaces failed: {err}"),
    }
}

fn cloexec_pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!(
            "creating the sandbox sync pipe: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: pipe2 returned two fresh fds we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// SIGKILL a child we spawned and reap it.
pub fn kill_and_reap(pid: i32) {
    // SAFETY: plain syscalls on a pid we own (our unreaped child).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Wait up to `timeout` for our child `pid` to exit; true if it was reaped.
pub fn wait_exit(pid: i32, timeout: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if r == pid || r < 0 {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
