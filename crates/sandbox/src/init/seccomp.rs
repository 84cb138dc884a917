//! The session's seccomp deny-list (default allow).
//!
//! Three `seccompiler` filters, one per errno, plus a hand-written architecture
//! filter that kills foreign-architecture and x32 system calls, chained into one
//! BPF program: each part's "allow" becomes a jump to the next part, so the first
//! part that does not allow decides. The parts deny disjoint system calls, so this
//! is what four stacked filters would decide, at a quarter of the kernel's
//! per-filter cost (JIT and action cache) on every session start. The program is
//! compiled once per worker, in the zygote.

use seccompiler::{
    apply_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// The compiled program (built once, in the zygote).
static COMPILED: OnceLock<Result<BpfProgram, String>> = OnceLock::new();

/// Compile the filters now, so every session init only installs them.
pub fn prepare() {
    compiled();
}

fn compiled() -> &'static Result<BpfProgram, String> {
    COMPILED.get_or_init(|| compile().map_err(|e| format!("{e:#}")))
}

/// Install the filter on the calling thread (inherited by every child).
pub fn install() -> anyhow::Result<()> {
    let program = compiled().as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    apply_filter(program)?;
    Ok(())
}

fn compile() -> anyhow::Result<BpfProgram> {
    let (parts, watched) = rule_parts()?;
    // Architecture check, then a binary search that allows every system call no
    // rule mentions, then the rules. Without the search every allowed call walks
    // the rules' linear chains, and the kernel replays that walk for each syscall
    // number when it pre-computes the filter's action cache on every attach.
    let mut program = chain(vec![arch_filter(), Vec::new()]);
    program.extend(allow_unwatched(&watched.into_iter().collect::<Vec<_>>())?);
    program.extend(chain(parts));
    Ok(program)
}

/// The three `seccompiler` programs, and every syscall number they mention.
fn rule_parts() -> anyhow::Result<(Vec<BpfProgram>, BTreeSet<u32>)> {
    let arch: TargetArch = std::env::consts::ARCH.try_into().map_err(|_| {
        anyhow::anyhow!(
            "seccomp filter: unsupported architecture {}",
            std::env::consts::ARCH
        )
    })?;
    let mut parts = Vec::new();
    let mut watched = BTreeSet::new();
    for (rules, errno) in [
        (enosys_rules(), libc::ENOSYS),
        (eperm_rules()?, libc::EPERM),
        (socket_rules()?, libc::EAFNOSUPPORT),
    ] {
        watched.extend(rules.keys().map(|&nr| nr as u32));
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            arch,
        )?;
        parts.push(filter.try_into()?);
    }
    Ok((parts, watched))
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
/// Offset of the syscall number in `struct seccomp_data`.
const DATA_NR: u32 = 0;

/// Where a prefilter instruction jumps.
#[derive(Clone, Copy)]
enum To {
    Insn(usize),
    /// The rules right after the prefilter: the call is one they decide.
    Rules,
    /// The prefilter's final "return allow".
    Allow,
}

/// `return allow` unless the syscall number is one of `watched` (sorted), in
/// which case fall through to the code after this block.
fn allow_unwatched(watched: &[u32]) -> anyhow::Result<BpfProgram> {
    if watched.is_empty() {
        return Ok(Vec::new());
    }
    let mut tree: Vec<(u16, u32, To, To)> = vec![(BPF_LD_W_ABS, DATA_NR, To::Allow, To::Allow)];
    search(watched, &mut tree);
    let allow = tree.len();
    let rules = allow + 1;
    let mut out = Vec::with_capacity(rules);
    for (i, &(code, k, jt, jf)) in tree.iter().enumerate() {
        let offset = |to: To| {
            let target = match to {
                To::Insn(n) => n,
                To::Rules => rules,
                To::Allow => allow,
            };
            u8::try_from(target - (i + 1))
                .map_err(|_| anyhow::anyhow!("seccomp prefilter jump too far"))
        };
        let (jt, jf) = if code == BPF_LD_W_ABS {
            (0, 0)
        } else {
            (offset(jt)?, offset(jf)?)
        };
        out.push(seccompiler::sock_filter { code, jt, jf, k });
    }
    out.push(seccompiler::sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: SECCOMP_RET_ALLOW,
    });
    Ok(out)
}

/// Emit a binary search over `keys`: a match jumps to the rules, a miss to allow.
fn search(keys: &[u32], out: &mut Vec<(u16, u32, To, To)>) {
    if keys.len() <= 4 {
        for (i, &k) in keys.iter().enumerate() {
            let miss = if i + 1 == keys.len() {
                To::Allow
            } else {
                To::Insn(out.len() + 1)
            };
            out.push((BPF_JEQ_K, k, To::Rules, miss));
        }
        return;
    }
    let mid = keys.len() / 2;
    let at = out.len();
    out.push((BPF_JGE_K, keys[mid], To::Allow, To::Insn(at + 1)));
    search(&keys[..mid], out);
    out[at].2 = To::Insn(out.len());
    search(&keys[mid..], out);
}

const BPF_JMP_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

/// Concatenate programs; in all but the last, "return allow" jumps to the start of
/// the next program instead.
fn chain(programs: Vec<BpfProgram>) -> BpfProgram {
    let last = programs.len().saturating_sub(1);
    let mut out = Vec::new();
    for (n, mut program) in programs.into_iter().enumerate() {
        if n != last {
            let len = program.len();
            for (i, insn) in program.iter_mut().enumerate() {
                if insn.code == BPF_RET_K && insn.k == SECCOMP_RET_ALLOW {
                    *insn = seccompiler::sock_filter {
                        code: BPF_JMP_JA,
                        jt: 0,
                        jf: 0,
                        k: (len - i - 1) as u32,
                    };
                }
            }
        }
        out.extend(program);
    }
    out
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
    const RET_K: u16 = BPF_RET_K;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const ALLOW: u32 = SECCOMP_RET_ALLOW;
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
#[path = "seccomp_tests.rs"]
mod emulated;

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

    #[test]
    fn chained_program_allows_only_at_its_end() {
        let parts = vec![arch_filter(), arch_filter()];
        let chained = chain(parts);
        assert_eq!(chained.len(), 14);
        // The first part's allow now jumps to the second part's first instruction.
        assert_eq!((chained[6].code, chained[6].k), (BPF_JMP_JA, 0));
        assert_eq!(chained[13].k, SECCOMP_RET_ALLOW);
        let full = compile().unwrap();
        let allows: Vec<usize> = full
            .iter()
            .enumerate()
            .filter(|(_, i)| i.code == BPF_RET_K && i.k == SECCOMP_RET_ALLOW)
            .map(|(n, _)| n)
            .collect();
        // One allow ends the prefilter; the others are in the last rule part.
        let tail = allows.iter().skip(1).all(|&n| n >= full.len() - 40);
        assert!(
            allows.len() >= 2 && tail,
            "allow outside the prefilter and the last part: {allows:?}"
        );
        for (n, insn) in full
            .iter()
            .enumerate()
            .filter(|(_, i)| i.code == BPF_JMP_JA)
        {
            assert!(
                n + 1 + (insn.k as usize) < full.len(),
                "jump past the end at {n}"
            );
        }
    }
}
