//! The prefiltered program decides exactly like the plain chain of the rule
//! programs, checked with a small classic-BPF interpreter over every syscall number
//! and the argument patterns the rules look at.

use super::*;

const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// The ioctl request constants are `u64` on some targets and `c_int` on others.
#[allow(clippy::unnecessary_cast)]
fn tty_requests() -> (u64, u64) {
    (libc::TIOCSTI as u64, libc::TIOCLINUX as u64)
}

/// Run `program` on a `struct seccomp_data` and return its action.
fn run(program: &BpfProgram, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let insn = &program[pc];
        pc += 1;
        let cond = |taken: bool| if taken { insn.jt } else { insn.jf } as usize;
        match insn.code {
            LD_W_ABS => {
                let k = insn.k as usize;
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            ALU_AND_K => acc &= insn.k,
            JA => pc += insn.k as usize,
            JEQ_K => pc += cond(acc == insn.k),
            JGT_K => pc += cond(acc > insn.k),
            JGE_K => pc += cond(acc >= insn.k),
            JSET_K => pc += cond(acc & insn.k != 0),
            RET_K => return insn.k,
            other => panic!("instruction {other:#x} not emulated"),
        }
    }
}

#[test]
fn prefilter_keeps_every_decision() {
    let (parts, watched) = rule_parts().unwrap();
    let mut plain = vec![arch_filter()];
    plain.extend(parts);
    let reference = chain(plain);
    let fast = compile().unwrap();
    assert!(!watched.is_empty());
    let native = u32::from_le_bytes(fast[1].k.to_le_bytes());
    let (tiocsti, tioclinux) = tty_requests();
    let args_sets: Vec<[u64; 6]> = vec![
        [0; 6],
        [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
        [
            libc::CLONE_NEWNET as u64 | libc::SIGCHLD as u64,
            0,
            0,
            0,
            0,
            0,
        ],
        [1, tiocsti, 0, 0, 0, 0],
        [1, tioclinux | 0xffff_ffff_0000_0000, 0, 0, 0, 0],
        [libc::AF_PACKET as u64, 3, 0, 0, 0, 0],
        [libc::AF_NETLINK as u64, 3, 9, 0, 0, 0],
        [
            libc::AF_NETLINK as u64,
            3,
            libc::NETLINK_ROUTE as u64,
            0,
            0,
            0,
        ],
        [0xffff_ffff, 0, 0, 0, 0, 0],
        [8, 0, 0, 0, 0, 0],
    ];
    let mut denied = 0;
    for arch in [native, 0x4000_0003] {
        for nr in (0..1024).chain([0x4000_0000, 0x4000_0001, u32::MAX]) {
            for args in &args_sets {
                let want = run(&reference, nr, arch, *args);
                assert_eq!(
                    run(&fast, nr, arch, *args),
                    want,
                    "nr {nr} arch {arch:#x} args {args:?}"
                );
                denied += usize::from(want != SECCOMP_RET_ALLOW);
            }
        }
    }
    // The comparison is not vacuous: the rules deny plenty of these.
    assert!(denied > 1000, "{denied}");
    // ptrace is denied, getpid allowed, whatever the arguments.
    let ptrace = libc::SYS_ptrace as u32;
    assert_ne!(run(&fast, ptrace, native, [0; 6]), SECCOMP_RET_ALLOW);
    let getpid = libc::SYS_getpid as u32;
    assert_eq!(run(&fast, getpid, native, [0; 6]), SECCOMP_RET_ALLOW);
}
