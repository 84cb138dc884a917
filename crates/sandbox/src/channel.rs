//! The worker ⇄ init channel: length-prefixed JSON frames over a socketpair.
//!
//! A frame is a little-endian `u32` byte count followed by that many bytes of JSON.
//! Blocking std I/O on both ends: the init is single-threaded and the worker side
//! runs on a dedicated thread per session.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// Upper bound on one frame; tool outputs are capped far below this.
const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// Write one frame.
pub fn send<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)?;
    w.flush()
}

/// Read one frame; `Ok(None)` on a clean end of stream before a frame starts.
pub fn recv<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Everything the init needs to build the sandbox, sent as the first frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitConfig {
    /// Host path of the session workspace (bound at `/workspace`).
    pub workspace: PathBuf,
    /// Host paths bound read-only at the same path.
    pub ro_binds: Vec<PathBuf>,
    /// Host paths bound read-write at the same path.
    pub rw_binds: Vec<PathBuf>,
    /// Workspace-relative paths bound read-only (protected + read-only paths).
    pub protected: Vec<PathBuf>,
    /// Workspace-relative paths the file tools refuse to write.
    pub read_only_paths: Vec<PathBuf>,
    /// Extra roots the file tools may read (host paths, bound read-only).
    pub allowed_roots: Vec<PathBuf>,
    pub tmp_mib: u64,
    /// A fresh network namespace was created: bring `lo` up.
    pub new_netns: bool,
    /// Complete environment of the shell (allowlist already applied).
    pub env: Vec<(String, String)>,
    /// Number of CPUs the init pins itself to (`nproc` inside).
    pub cpus: usize,
    pub max_bash_timeout_ms: Option<u64>,
    /// Namespace uid and gid the init switches to once the sandbox is built, so
    /// bash and the file tools run as it (0: stay ns-root, single-uid map).
    pub workload_uid: u32,
}

/// The second frame: the session's resource limits, sent once the worker created
/// them (in parallel with the init's filesystem setup). It carries the open
/// cgroup attach files as `SCM_RIGHTS`; the init joins them before it answers
/// [`Ready`], so nothing of the workload ever runs outside the limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitsFrame {
    /// Rlimits to apply when no cgroup is available.
    pub rlimits: Option<RlimitPlan>,
}

/// Most fds a [`LimitsFrame`] carries (one per cgroup controller).
const MAX_FRAME_FDS: usize = 8;

/// Write one frame with `fds` attached to its first byte.
pub fn send_with_fds<T: Serialize>(
    stream: &std::os::unix::net::UnixStream,
    msg: &T,
    fds: &[std::os::fd::RawFd],
) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    if fds.len() > MAX_FRAME_FDS {
        return Err(io::Error::other(format!("{} fds in one frame", fds.len())));
    }
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&body);
    let cmsg = [ControlMessage::ScmRights(fds)];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[io::IoSlice::new(&buf)],
        if fds.is_empty() { &[] } else { &cmsg },
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    // The fds went with the first byte; a short write only needs the rest.
    let mut w = stream;
    w.write_all(&buf[sent..])?;
    w.flush()
}

/// Read one frame written by [`send_with_fds`], with its fds (close-on-exec).
pub fn recv_with_fds<T: DeserializeOwned>(
    stream: &std::os::unix::net::UnixStream,
) -> io::Result<(T, Vec<std::os::fd::OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    let mut len = [0u8; 4];
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FRAME_FDS]);
    let mut iov = [io::IoSliceMut::new(&mut len)];
    let mut fds = Vec::new();
    let bytes = {
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_WAITALL,
        )?;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(list) = c {
                // SAFETY: the kernel just installed these fds for us.
                fds.extend(list.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
            }
        }
        msg.bytes
    };
    if bytes != 4 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "channel closed before the limits frame",
        ));
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    let mut r = stream;
    r.read_exact(&mut body)?;
    let value =
        serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((value, fds))
}

/// Fallback resource limits (no writable cgroup).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RlimitPlan {
    pub address_space_bytes: u64,
    pub nproc: u64,
}

/// The init's answer to the config frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Ready {
    /// The sandbox is built and restricted; calls may follow.
    Ok {
        /// Landlock ABI in force (0 = none).
        landlock_abi: i32,
        /// Placeholders the init created in the host workspace (removed at close if still empty).
        placeholders: Vec<PathBuf>,
    },
    /// Setup failed; the text says what and how to fix it.
    Failed(String),
}

/// One tool call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallRequest {
    pub tool: String,
    pub input: serde_json::Value,
    /// Milliseconds from receipt until the caller's outer deadline.
    pub deadline_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_eof_is_none() {
        let mut buf = Vec::new();
        let req = CallRequest {
            tool: "bash".into(),
            input: serde_json::json!({"command": "true"}),
            deadline_ms: Some(5),
        };
        send(&mut buf, &req).unwrap();
        let mut r = io::Cursor::new(buf);
        let back: CallRequest = recv(&mut r).unwrap().unwrap();
        assert_eq!(back.tool, "bash");
        assert_eq!(back.deadline_ms, Some(5));
        assert!(recv::<CallRequest>(&mut r).unwrap().is_none());
    }

    #[test]
    fn frames_carry_fds() {
        use std::io::Seek;
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"hello").unwrap();
        let frame = LimitsFrame {
            rlimits: Some(RlimitPlan {
                address_space_bytes: 1,
                nproc: 2,
            }),
        };
        use std::os::fd::AsRawFd;
        send_with_fds(&a, &frame, &[file.as_raw_fd()]).unwrap();
        let (back, fds): (LimitsFrame, _) = recv_with_fds(&b).unwrap();
        assert_eq!(back.rlimits.unwrap().nproc, 2);
        let mut got = std::fs::File::from(fds.into_iter().next().unwrap());
        got.rewind().unwrap();
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello");
        drop(a);
        assert!(recv_with_fds::<LimitsFrame>(&b).is_err());
    }

    #[test]
    fn oversized_frame_is_rejected() {
        let mut r = io::Cursor::new(u32::MAX.to_le_bytes().to_vec());
        assert!(recv::<CallRequest>(&mut r).is_err());
    }
}
