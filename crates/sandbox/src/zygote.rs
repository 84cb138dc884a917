//! The per-worker *zygote*: a small single-threaded helper that clones session
//! inits, so a session costs one `clone` instead of `clone` + `execve` of the
//! (large) sandkeep binary and a fresh Rust runtime.
//!
//! The worker starts it once (`sandkeep __sandbox-init`, empty environment, the
//! zygote channel on fd 3) and keeps it for its lifetime. Per session the worker
//! sends one fixed-size request over a `SOCK_SEQPACKET` socket, with the session's
//! channel as `SCM_RIGHTS`. The zygote clones the init
//! into fresh namespaces with `CLONE_PARENT`, so the init is the *worker's* child
//! (the worker waits for and kills it exactly as before), writes its id maps and
//! releases it. Because the zygote has a single thread, the clone may run ordinary
//! Rust code up to the init's call loop without `execve`.
//!
//! The zygote never sees a session's configuration (that goes straight to the
//! init over the session channel), so nothing of one session is in the memory the
//! next session's init is copied from. Each init still gets fresh namespaces, its
//! own uid range, its own cgroups and its own `/tmp`.
//!
//! Work done once here instead of per session: compiling the seccomp filters and
//! reading `cap_last_cap` ([`crate::init::prepare_once`]).

use crate::spawn::{write_id_maps, IdMap};
use anyhow::{bail, Context};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Request: flags, id-map kind, two id-map values (little-endian u32 each).
const REQUEST_LEN: usize = 16;
/// Reply: pid (or 0), errno of the failed step (0 = released), step number.
const REPLY_LEN: usize = 12;
/// A request carries exactly one fd: the init's end of the session channel.
const MAX_FDS: usize = 1;
const FLAG_NEW_NETNS: u32 = 1;

/// What went wrong in the zygote, by step (for the worker's error text).
const STEP_CLONE: u32 = 1;
const STEP_ID_MAPS: u32 = 2;
const STEP_RELEASE: u32 = 3;

/// How long the worker waits for one clone before replacing the zygote.
const ZYGOTE_ANSWER_TIMEOUT_SECS: i64 = 10;

/// Where the zygote finds its channel.
pub const ZYGOTE_CHANNEL_FD: RawFd = 3;

struct Running {
    pid: i32,
    exe: PathBuf,
    chan: OwnedFd,
}

static ZYGOTE: Mutex<Option<Running>> = Mutex::new(None);

/// Worker side: have the zygote (started on first use) clone a session init.
/// Returns the init's host pid.
pub fn clone_init(
    exe: &Path,
    new_netns: bool,
    ids: IdMap,
    session_chan: OwnedFd,
) -> anyhow::Result<i32> {
    let mut guard = ZYGOTE.lock().unwrap_or_else(|p| p.into_inner());
    let request = encode_request(new_netns, ids);
    let fds = [session_chan.as_raw_fd()];
    // One retry: a zygote that died (e.g. killed by an operator) is replaced.
    for attempt in 0..2 {
        if guard.as_ref().is_none_or(|z| z.exe != exe) {
            if let Some(old) = guard.take() {
                stop(old);
            }
            *guard = Some(start(exe)?);
        }
        let zygote = guard.as_ref().expect("just started");
        match exchange(&zygote.chan, &request, &fds) {
            Ok(reply) => return decode_reply(reply),
            Err(e) if attempt == 0 => {
                tracing::warn!(error = %e, "sandbox zygote is gone; starting a new one");
                if let Some(old) = guard.take() {
                    stop(old);
                }
            }
            Err(e) => return Err(e).context("talking to the sandbox zygote"),
        }
    }
    unreachable!("the loop returns on its second attempt")
}

fn encode_request(new_netns: bool, ids: IdMap) -> [u8; REQUEST_LEN] {
    let flags = if new_netns { FLAG_NEW_NETNS } else { 0 };
    let (kind, a, b) = match ids {
        IdMap::Range { base } => (0u32, base, 0u32),
        IdMap::Single { uid, gid } => (1, uid, gid),
    };
    let mut out = [0u8; REQUEST_LEN];
    for (i, v) in [flags, kind, a, b].into_iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode_request(buf: &[u8; REQUEST_LEN]) -> Option<(bool, IdMap)> {
    let word = |i: usize| u32::from_le_bytes(buf[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let ids = match word(1) {
        0 => IdMap::Range { base: word(2) },
        1 => IdMap::Single {
            uid: word(2),
            gid: word(3),
        },
        _ => return None,
    };
    Some((word(0) & FLAG_NEW_NETNS != 0, ids))
}

fn decode_reply(reply: [u8; REPLY_LEN]) -> anyhow::Result<i32> {
    let word = |i: usize| i32::from_le_bytes(reply[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let (pid, errno, step) = (word(0), word(1), word(2) as u32);
    if errno == 0 && pid > 0 {
        return Ok(pid);
    }
    if pid > 0 {
        crate::spawn::kill_and_reap(pid);
    }
    let err = std::io::Error::from_raw_os_error(errno);
    match step {
        STEP_CLONE => bail!("{}", crate::spawn::clone_error_hint(&err)),
        STEP_ID_MAPS => bail!("writing the sandbox's uid/gid maps: {err}"),
        _ => bail!("releasing the sandbox init: {err}"),
    }
}

fn exchange(chan: &OwnedFd, request: &[u8], fds: &[RawFd]) -> anyhow::Result<[u8; REPLY_LEN]> {
    let cmsg = [ControlMessage::ScmRights(fds)];
    sendmsg::<()>(
        chan.as_raw_fd(),
        &[IoSlice::new(request)],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .context("sending a request to the sandbox zygote")?;
    let mut reply = [0u8; REPLY_LEN];
    let n = recvmsg::<()>(
        chan.as_raw_fd(),
        &mut [IoSliceMut::new(&mut reply)],
        None,
        MsgFlags::empty(),
    )
    .context("reading the sandbox zygote's answer")?
    .bytes;
    if n != REPLY_LEN {
        bail!("the sandbox zygote closed its channel");
    }
    Ok(reply)
}

/// Fork+exec the zygote with an empty environment and its channel on fd 3.
fn start(exe: &Path) -> anyhow::Result<Running> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("creating the sandbox zygote channel")?;
    let exe_c = CString::new(exe.as_os_str().as_encoded_bytes())
        .context("init executable path contains NUL")?;
    let arg1 = CString::new(crate::INIT_ARG).expect("static string");
    let argv = [exe_c.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let child_fd = theirs.as_raw_fd();
    // SAFETY: fork-like clone of a multi-threaded process: the child only makes
    // async-signal-safe calls on memory prepared before the clone, then execs.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: child side; see above.
        unsafe {
            if child_fd == ZYGOTE_CHANNEL_FD {
                libc::fcntl(child_fd, libc::F_SETFD, 0);
            } else if libc::dup2(child_fd, ZYGOTE_CHANNEL_FD) < 0 {
                libc::_exit(126);
            }
            libc::execve(exe_c.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        bail!(
            "starting the sandbox zygote: {}",
            std::io::Error::last_os_error()
        );
    }
    // A zygote that stops answering is replaced instead of blocking every start.
    let timeout = nix::sys::time::TimeVal::new(ZYGOTE_ANSWER_TIMEOUT_SECS, 0);
    nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
        .context("setting the sandbox zygote's answer timeout")?;
    Ok(Running {
        pid: pid as i32,
        exe: exe.to_path_buf(),
        chan: ours,
    })
}

fn stop(old: Running) {
    drop(old.chan);
    // Closing the channel makes the zygote exit; reap it so no zombie stays.
    if !crate::spawn::wait_exit(old.pid, std::time::Duration::from_secs(1)) {
        crate::spawn::kill_and_reap(old.pid);
    }
}

/// Zygote side: serve clone requests until the worker closes the channel.
pub fn zygote_main() -> ! {
    // SAFETY: the worker placed our channel on this fd.
    let chan = unsafe { OwnedFd::from_raw_fd(ZYGOTE_CHANNEL_FD) };
    // SAFETY: plain fcntl; the channel must not leak into anything we start.
    unsafe { libc::fcntl(chan.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    crate::init::prepare_once();
    loop {
        let mut request = [0u8; REQUEST_LEN];
        let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut iov = [IoSliceMut::new(&mut request)];
        let (n, fds) = match recvmsg::<()>(
            chan.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs().into_iter().flatten() {
                    if let ControlMessageOwned::ScmRights(list) = c {
                        // SAFETY: the kernel just installed these fds for us.
                        fds.extend(list.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                    }
                }
                (msg.bytes, fds)
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => std::process::exit(0),
        };
        if n == 0 {
            std::process::exit(0);
        }
        let reply = match (n == REQUEST_LEN)
            .then(|| decode_request(&request))
            .flatten()
        {
            Some((new_netns, ids)) if fds.len() == 1 => {
                clone_session(chan.as_raw_fd(), new_netns, ids, fds)
            }
            _ => (0, libc::EINVAL, STEP_CLONE),
        };
        let mut out = [0u8; REPLY_LEN];
        out[0..4].copy_from_slice(&reply.0.to_le_bytes());
        out[4..8].copy_from_slice(&reply.1.to_le_bytes());
        out[8..12].copy_from_slice(&reply.2.to_le_bytes());
        if sendmsg::<()>(
            chan.as_raw_fd(),
            &[IoSlice::new(&out)],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .is_err()
        {
            std::process::exit(0);
        }
    }
}

/// Clone one session init; returns (pid or 0, errno, failed step).
fn clone_session(
    zygote_chan: RawFd,
    new_netns: bool,
    ids: IdMap,
    mut fds: Vec<OwnedFd>,
) -> (i32, i32, u32) {
    let session_chan = fds.remove(0);
    let (sync_read, sync_write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return (0, e as i32, STEP_CLONE),
    };
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWCGROUP
        | libc::CLONE_PARENT;
    if new_netns {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: fork-like clone of this single-threaded process; CLONE_PARENT makes
    // the worker the init's parent (its exit signal is our own, SIGCHLD).
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
        // Child: single-threaded copy of the zygote, so plain Rust is fine here.
        // SAFETY: the zygote channel belongs to the zygote, not to the session.
        unsafe { libc::close(zygote_chan) };
        drop(sync_write);
        crate::init::session_main(session_chan, sync_read, ids);
    }
    if pid < 0 {
        return (0, nix::errno::Errno::last_raw(), STEP_CLONE);
    }
    let pid = pid as i32;
    drop(sync_read);
    drop(session_chan);
    if let Err(e) = write_id_maps(pid, ids) {
        let errno = e
            .downcast_ref::<std::io::Error>()
            .and_then(|e| e.raw_os_error())
            .unwrap_or(libc::EIO);
        return (pid, errno, STEP_ID_MAPS);
    }
    match nix::unistd::write(&sync_write, b"g") {
        Ok(1) => (pid, 0, 0),
        Ok(_) => (pid, libc::EIO, STEP_RELEASE),
        Err(e) => (pid, e as i32, STEP_RELEASE),
    }
}

/// A fresh session channel: the worker's end and the init's end.
pub fn session_channel() -> anyhow::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = UnixStream::pair().context("creating the sandbox channel")?;
    Ok((ours, theirs.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for ids in [
            IdMap::Range { base: 1_065_536 },
            IdMap::Single {
                uid: 1000,
                gid: 100,
            },
        ] {
            let (net, back) = decode_request(&encode_request(true, ids)).unwrap();
            assert!(net);
            assert_eq!(format!("{back:?}"), format!("{ids:?}"));
        }
        let mut bad = encode_request(false, IdMap::Range { base: 0 });
        bad[4] = 7;
        assert!(decode_request(&bad).is_none());
    }

    #[test]
    fn failed_steps_name_what_to_fix() {
        let mut reply = [0u8; REPLY_LEN];
        reply[4..8].copy_from_slice(&libc::EPERM.to_le_bytes());
        reply[8..12].copy_from_slice(&STEP_CLONE.to_le_bytes());
        let err = decode_reply(reply).unwrap_err().to_string();
        assert!(err.contains("user namespaces"), "{err}");
        reply[8..12].copy_from_slice(&STEP_ID_MAPS.to_le_bytes());
        let err = decode_reply(reply).unwrap_err().to_string();
        assert!(err.contains("uid/gid maps"), "{err}");
    }
}
