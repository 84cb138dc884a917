//! Host side of sandbox creation: the uid/gid maps of a session's user namespace
//! and the spawn of its init (through the worker's zygote, [`crate::zygote`]),
//! plus waiting for and killing the init, which is always the worker's child.

use crate::zygote;
use anyhow::Context;
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

/// The namespace uid and gid the workload runs as when a uid range is mapped.
pub const WORKLOAD_UID: u32 = 1000;

impl IdMap {
    /// The namespace uid (= gid) of bash and the file tools: [`WORKLOAD_UID`] with
    /// a range map; 0 with a single-uid map, where no other uid exists (the
    /// workload still holds no capabilities).
    pub fn workload_uid(&self) -> u32 {
        match *self {
            IdMap::Range { .. } => WORKLOAD_UID,
            IdMap::Single { .. } => 0,
        }
    }

    /// The host uid the workload's uid maps to (owner of the workspace).
    pub fn workload_host_uid(&self) -> u32 {
        match *self {
            IdMap::Range { base } => base + WORKLOAD_UID,
            IdMap::Single { uid, .. } => uid,
        }
    }
}

/// A freshly started init: its host pid and the worker's end of the channel.
pub struct SpawnedInit {
    pub pid: i32,
    pub channel: UnixStream,
}

/// Start a session init in new namespaces (cloned by the worker's zygote, see
/// [`crate::zygote`]).
pub fn spawn_init(exe: &Path, new_netns: bool, ids: IdMap) -> anyhow::Result<SpawnedInit> {
    let (ours, theirs) = zygote::session_channel()?;
    let pid = zygote::clone_init(exe, new_netns, ids, theirs)?;
    Ok(SpawnedInit { pid, channel: ours })
}

pub(crate) fn write_id_maps(pid: i32, ids: IdMap) -> anyhow::Result<()> {
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

pub(crate) fn clone_error_hint(err: &std::io::Error) -> String {
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
