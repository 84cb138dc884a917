//! The sandbox init: PID 1 of a session's pid namespace.
//!
//! Cloned by the worker's zygote ([`crate::zygote`], itself `sandkeep
//! __sandbox-init` with an empty environment). It reads its [`InitConfig`] from
//! the session channel, builds the filesystem view ([`mounts`]), brings up
//! loopback, restricts itself ([`restrict`], [`seccomp`]), joins the resource
//! limits the worker created meanwhile ([`LimitsFrame`]), answers [`Ready`], then
//! serves tool calls ([`serve`]). No async runtime, no threads, no `execve`:
//! startup stays in the low milliseconds.

mod mounts;
mod protect;
mod restrict;
mod seccomp;
mod serve;

use crate::channel::{self, InitConfig, LimitsFrame, Ready};
use crate::spawn::IdMap;
use anyhow::Context;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Entry point of the hidden `__sandbox-init` subcommand: the worker starts the
/// binary once per process as its zygote ([`crate::zygote`]), which clones the
/// session inits. Never returns.
pub fn init_main() -> ! {
    crate::zygote::zygote_main()
}

/// Session-independent work the zygote does once, so no init repeats it.
pub(crate) fn prepare_once() {
    seccomp::prepare();
    restrict::prepare();
}

/// A freshly cloned session init (a single-threaded copy of the zygote): join the
/// session's cgroups, wait until the zygote wrote the id maps, become ns-root, then
/// build the sandbox and serve calls. Never returns.
pub(crate) fn session_main(chan: OwnedFd, released: OwnedFd, ids: IdMap) -> ! {
    let mut byte = [0u8; 1];
    if nix::unistd::read(released.as_raw_fd(), &mut byte) != Ok(1) {
        // The zygote failed to map our ids; the worker kills us.
        std::process::exit(126);
    }
    drop(released);
    // Become ns-root: our host uid is not mapped in a range map, and only a mapped
    // uid 0 holds the namespace's capabilities.
    // SAFETY: plain syscalls; this process has a single thread.
    let ok = unsafe {
        (matches!(ids, IdMap::Single { .. })
            || libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) == 0)
            && libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32) == 0
            && libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) == 0
    };
    if !ok {
        std::process::exit(125);
    }
    let mut chan = UnixStream::from(chan);
    let cfg: InitConfig = match channel::recv(&mut chan) {
        Ok(Some(cfg)) => cfg,
        _ => std::process::exit(2),
    };
    match setup(&cfg).and_then(|built| join_limits(&chan).map(|()| built)) {
        Ok((landlock_abi, placeholders)) => {
            if channel::send(
                &mut chan,
                &Ready::Ok {
                    landlock_abi,
                    placeholders,
                },
            )
            .is_err()
            {
                std::process::exit(3);
            }
        }
        Err(e) => {
            let _ = channel::send(&mut chan, &Ready::Failed(format!("{e:#}")));
            std::process::exit(1);
        }
    }
    serve::serve(chan, &cfg);
}

/// Receive the session's limits (created by the worker while we built the
/// filesystem) and put ourselves under them, before any workload runs.
fn join_limits(chan: &UnixStream) -> anyhow::Result<()> {
    let (frame, attach): (LimitsFrame, _) =
        channel::recv_with_fds(chan).context("receiving the session's resource limits")?;
    // Writing "0" moves the calling thread only (we have one), which on cgroup v1
    // skips the global threadgroup lock (an RCU grace period, 1–12 ms here) that
    // writing our pid from the worker would take.
    for fd in &attach {
        nix::unistd::write(fd, b"0").context("joining the session's cgroup")?;
    }
    if let Some(plan) = frame.rlimits {
        apply_rlimits(plan)?;
    }
    Ok(())
}

fn setup(cfg: &InitConfig) -> anyhow::Result<(i32, Vec<PathBuf>)> {
    let built = mounts::build_root(cfg).context("building the sandbox filesystem")?;
    nix::unistd::sethostname("sandkeep").context("setting the hostname")?;
    if cfg.new_netns {
        loopback_up().context("bringing up loopback in the sandbox network namespace")?;
    }
    pin_cpus(cfg.cpus);
    let mut read_exec = built.system_dirs.clone();
    read_exec.extend(cfg.ro_binds.iter().cloned());
    read_exec.extend(cfg.allowed_roots.iter().cloned());
    let mut full = vec![PathBuf::from("/workspace"), PathBuf::from("/tmp")];
    full.extend(cfg.rw_binds.iter().cloned());
    let abi = restrict::restrict_self(
        &restrict::LandlockPaths { read_exec, full },
        cfg.workload_uid,
    )?;
    Ok((abi, built.placeholders))
}

/// `ip link set lo up` via SIOCSIFFLAGS (needs only CAP_NET_ADMIN in our netns).
fn loopback_up() -> anyhow::Result<()> {
    // SAFETY: a datagram socket and two ioctls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            anyhow::bail!("socket: {}", std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let result = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        libc::close(fd);
        result.context("SIOCSIFFLAGS on lo")
    }
}

/// Restrict ourselves (and so every descendant) to the first `cpus` allowed CPUs,
/// so `nproc` inside matches the quota.
fn pin_cpus(cpus: usize) {
    // SAFETY: cpu_set_t is plain data; sched_{get,set}affinity on ourselves.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        let mut keep: libc::cpu_set_t = std::mem::zeroed();
        let mut kept = 0;
        for cpu in 0..libc::CPU_SETSIZE as usize {
            if kept >= cpus.max(1) {
                break;
            }
            if libc::CPU_ISSET(cpu, &set) {
                libc::CPU_SET(cpu, &mut keep);
                kept += 1;
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &keep);
    }
}

fn apply_rlimits(plan: channel::RlimitPlan) -> anyhow::Result<()> {
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(
        Resource::RLIMIT_AS,
        plan.address_space_bytes,
        plan.address_space_bytes,
    )
    .context("setting RLIMIT_AS")?;
    setrlimit(Resource::RLIMIT_NPROC, plan.nproc, plan.nproc).context("setting RLIMIT_NPROC")?;
    Ok(())
}
