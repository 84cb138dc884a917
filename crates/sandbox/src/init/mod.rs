//! The sandbox init: PID 1 of a session's pid namespace.
//!
//! Started by [`crate::spawn`] as `sandkeep __sandbox-init` with an empty
//! environment and the channel on fd 3. It reads its [`InitConfig`], builds the
//! filesystem view ([`mounts`]), brings up loopback, restricts itself
//! ([`restrict`], [`seccomp`]), answers [`Ready`], then serves tool calls
//! ([`serve`]). No async runtime, no threads: startup stays in the low milliseconds.

mod mounts;
mod protect;
mod restrict;
mod seccomp;
mod serve;

use crate::channel::{self, InitConfig, Ready, INIT_CHANNEL_FD};
use anyhow::Context;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Entry point of the hidden `__sandbox-init` subcommand. Never returns.
pub fn init_main() -> ! {
    // SAFETY: the spawner placed our end of the channel on this fd; mark it
    // close-on-exec so bash never inherits it.
    let mut chan = unsafe {
        libc::fcntl(INIT_CHANNEL_FD, libc::F_SETFD, libc::FD_CLOEXEC);
        UnixStream::from_raw_fd(INIT_CHANNEL_FD)
    };
    let cfg: InitConfig = match channel::recv(&mut chan) {
        Ok(Some(cfg)) => cfg,
        _ => std::process::exit(2),
    };
    match setup(&cfg) {
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

fn setup(cfg: &InitConfig) -> anyhow::Result<(i32, Vec<PathBuf>)> {
    let built = mounts::build_root(cfg).context("building the sandbox filesystem")?;
    nix::unistd::sethostname("sandkeep").context("setting the hostname")?;
    if cfg.new_netns {
        loopback_up().context("bringing up loopback in the sandbox network namespace")?;
    }
    pin_cpus(cfg.cpus);
    if let Some(plan) = cfg.rlimits {
        apply_rlimits(plan)?;
    }
    let mut read_exec = built.system_dirs.clone();
    read_exec.extend(cfg.ro_binds.iter().cloned());
    read_exec.extend(cfg.allowed_roots.iter().cloned());
    let mut full = vec![PathBuf::from("/workspace"), PathBuf::from("/tmp")];
    full.extend(cfg.rw_binds.iter().cloned());
    let abi = restrict::restrict_self(&restrict::LandlockPaths { read_exec, full })?;
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
