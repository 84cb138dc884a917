//! The session's seccomp deny-list (default allow).
//!
//! Three `seccompiler` filters, one per errno, plus a hand-written architecture
//! filter that kills foreign-architecture and x32 system calls. When several
//! filters match, the kernel applies the most severe action, and for equal actions
//! the most recently installed filter's errno.

use seccompiler::{
    apply_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Install all filters on the calling thread (inherited by every child).
pub fn install() -> anyhow::Result<()> {
    let arch: TargetArch = std::env::consts::ARCH.try_into().map_err(|_| {
        anyhow::anyhow!(
            "seccomp filter: unsupported architecture {}",
            std::env::consts::ARCH
        )
    })?;
    for (rules, errno) in [
        (enosys_rules(), libc::ENOSYS),
        (eperm_rules()?, libc::EPERM),
        (socket_rules()?, libc::EAFNOSUPPORT),
    ] {
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            arch,
        )?;
        let program: BpfProgram = filter.try_into()?;
        apply_filter(&program)?;
    }
    apply_filter(&arch_filter())?;
    Ok(())
}

/// Denied with ENOSYS, so callers fall back (clone3 → clone) or report "not supported".
fn enosys_rules() -> Rules {
    [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_clone3,
    ]
    .into_iter()
    .map(|nr| (nr, vec![]))
    .collect()
}

// The ioctl request constants are `u64` on some targets and `c_int` on others.
#[allow(clippy::unnecessary_cast)]
fn eperm_rules() -> anyhow::Result<Rules> {
    let always = [
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsconfig,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_chroot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
    ];
    let mut rules: Rules = always.into_iter().map(|nr| (nr, vec![])).collect();
    let ns_flags = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        0x80, // CLONE_NEWTIME
    ];
    let clone_rules = ns_flags
        .iter()
        .map(|&f| {
            SeccompRule::new(vec![Cond::new(
                0,
                Len::Qword,
                Op::MaskedEq(f as u64),
                f as u64,
            )?])
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    // Only the query (0xffffffff) and the default persona (0) are allowed.
    rules.insert(
        libc::SYS_personality,
        vec![SeccompRule::new(vec![
            Cond::new(0, Len::Dword, Op::Ne, 0)?,
            Cond::new(0, Len::Dword, Op::Ne, 0xffff_ffff)?,
        ])?],
    );
    // Terminal injection; the request is compared as 32 bits (the kernel truncates it).
    rules.insert(
        libc::SYS_ioctl,
        vec![
            SeccompRule::new(vec![Cond::new(
                1,
                Len::Dword,
                Op::Eq,
                libc::TIOCSTI as u64,
            )?])?,
            SeccompRule::new(vec![Cond::new(
                1,
                Len::Dword,
                Op::Eq,
                libc::TIOCLINUX as u64,
            )?])?,
        ],
    );
    Ok(rules)
}

/// Packet, vsock and non-route netlink sockets.
fn socket_rules() -> anyhow::Result<Rules> {
    let domain = |d: i32| Cond::new(0, Len::Dword, Op::Eq, d as u64);
    let rules = vec![
        SeccompRule::new(vec![domain(libc::AF_PACKET)?])?,
        SeccompRule::new(vec![domain(libc::AF_VSOCK)?])?,
        SeccompRule::new(vec![
            domain(libc::AF_NETLINK)?,
            Cond::new(2, Len::Dword, Op::Ne, libc::NETLINK_ROUTE as u64)?,
        ])?,
    ];
    Ok([(libc::SYS_socket, rules)].into_iter().collect())
}

/// Kill calls made with another architecture's convention, and x32 calls.
fn arch_filter() -> BpfProgram {
    use seccompiler::sock_filter as Insn;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const ALLOW: u32 = 0x7fff_0000;
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xc000_00b7;
    #[cfg(target_arch = "riscv64")]
    const AUDIT_ARCH: u32 = 0xc000_00f3;
    // x32 system calls carry this bit (only meaningful on x86_64; harmless elsewhere).
    const X32_BIT: u32 = 0x4000_0000;
    let insn = |code, jt, jf, k| Insn { code, jt, jf, k };
    vec![
        insn(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        insn(JEQ_K, 1, 0, AUDIT_ARCH),
        insn(RET_K, 0, 0, KILL_PROCESS),
        insn(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        insn(JGE_K, 0, 1, X32_BIT),
        insn(RET_K, 0, 0, KILL_PROCESS),
        insn(RET_K, 0, 0, ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile() {
        let arch: TargetArch = std::env::consts::ARCH.try_into().unwrap();
        for rules in [
            enosys_rules(),
            eperm_rules().unwrap(),
            socket_rules().unwrap(),
        ] {
            let f = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(1), arch)
                .unwrap();
            let p: BpfProgram = f.try_into().unwrap();
            assert!(p.len() > 4);
        }
        assert_eq!(arch_filter().len(), 7);
    }
}
