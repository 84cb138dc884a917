//! The init's call loop: one [`Toolset`] under the sandbox's restrictions, orphan
//! reaping, and the clean-up that keeps a session free of stray processes.

use crate::channel::{self, CallRequest, InitConfig};
use sandkeep_tools::{ToolConfig, Toolset};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Serve calls until the worker closes the channel, then exit; the kernel then
/// kills whatever is left in the pid namespace.
pub fn serve(mut chan: UnixStream, cfg: &InitConfig) -> ! {
    let mut config = ToolConfig::new("/workspace");
    config.allowed_roots = cfg.allowed_roots.clone();
    config.read_only_roots = cfg
        .read_only_paths
        .iter()
        .map(|p| PathBuf::from("/workspace").join(p))
        .collect();
    config.shell_env = cfg.env.clone();
    config.max_bash_timeout = cfg.max_bash_timeout_ms.map(Duration::from_millis);
    config.after_shell_kill = Some(kill_all_others);
    let mut tools = Toolset::new(config);
    while wait_readable(&chan) {
        let req: CallRequest = match channel::recv(&mut chan) {
            Ok(Some(req)) => req,
            _ => break,
        };
        let deadline = req
            .deadline_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let out = tools.call(&req.tool, &req.input, deadline);
        if req.tool == "bash" {
            kill_outside_shell_session();
        }
        reap_exited();
        if channel::send(&mut chan, &out).is_err() {
            break;
        }
    }
    tools.close();
    kill_all_others();
    std::process::exit(0)
}

/// Block until the channel has data (or closed), reaping orphans meanwhile.
fn wait_readable(chan: &UnixStream) -> bool {
    loop {
        reap_exited();
        let mut pfd = libc::pollfd {
            fd: chan.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 500) };
        if n > 0 {
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// Reap every exited child without blocking (orphans re-parented to PID 1 too).
fn reap_exited() {
    // SAFETY: waitpid with a null status pointer.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// Kill every other process of the pid namespace and reap them all. Used after
/// the tools killed the shell (timeout, restart, close): nothing a call started
/// survives.
fn kill_all_others() {
    // SAFETY: kill(-1) from PID 1 reaches every other process in the namespace.
    unsafe { libc::kill(-1, libc::SIGKILL) };
    // SAFETY: blocking waitpid until no children remain (ECHILD).
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
}

/// After a bash call, kill processes that left the shell's session (daemons,
/// `setsid` children): background jobs of the shell itself persist, as the
/// protocol requires, but nothing detached outlives the call that started it.
fn kill_outside_shell_session() {
    let procs = list_processes();
    let shell_sid = procs
        .iter()
        .filter(|p| p.ppid == 1 && p.sid == p.pid && p.comm == "bash")
        .min_by_key(|p| p.start_time)
        .map(|p| p.sid);
    let mut killed = false;
    for p in procs
        .iter()
        .filter(|p| p.pid != 1 && Some(p.sid) != shell_sid)
    {
        // SAFETY: plain kill of a process in our namespace.
        unsafe { libc::kill(p.pid, libc::SIGKILL) };
        killed = true;
    }
    if killed {
        std::thread::sleep(Duration::from_millis(1));
        reap_exited();
    }
}

struct ProcStat {
    pid: i32,
    ppid: i32,
    sid: i32,
    start_time: u64,
    comm: String,
}

fn list_processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            parse_stat(
                pid,
                &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
            )
        })
        .collect()
}

/// Parse `/proc/<pid>/stat`; the command name may contain spaces and parentheses.
fn parse_stat(pid: i32, stat: &str) -> Option<ProcStat> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // fields[0] = state, [1] = ppid, [2] = pgrp, [3] = session, [19] = starttime.
    Some(ProcStat {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        sid: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
        comm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name_parses() {
        let s = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 10";
        let p = parse_stat(42, s).unwrap();
        assert_eq!(
            (p.pid, p.ppid, p.sid, p.start_time, p.comm.as_str()),
            (42, 1, 42, 12345, "a) b (c)")
        );
    }
}
