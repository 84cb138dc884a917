//! Stand-alone sandbox init for this crate's tests and benchmarks (the real
//! deployment uses `sandkeep __sandbox-init`). Point `SANDKEEP_INIT_EXE` at it.

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == sandkeep_sandbox::INIT_ARG)
    {
        sandkeep_sandbox::init_main();
    }
    eprintln!(
        "usage: sandkeep-sandbox-init {} (started by the sandbox, not by hand)",
        sandkeep_sandbox::INIT_ARG
    );
    std::process::exit(2);
}
