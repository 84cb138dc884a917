//! sandbox.md §4 case 3: a host without user namespaces gets an explicit error that
//! names the sysctl, from `doctor`, `worker poll` and `demo`, never a silent fallback.
//!
//! `user.max_user_namespaces` is per user namespace, so the test sets it to 0 inside
//! a throwaway namespace (`unshare --user`) and runs sandkeep there: the host's own
//! setting is never touched.

use crate::common::sandkeep_bin;
use std::process::{Command, Output};

/// Run `sandkeep ARGS` where no further user namespace can be created.
fn without_user_namespaces(args: &str) -> Option<Output> {
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 97; exec {} {args}",
        sandkeep_bin()
    );
    let out = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount-proc",
            "--pid",
            "--fork",
            "sh",
            "-c",
            &script,
        ])
        .env("ANTHROPIC_ENVIRONMENT_ID", "env_case3")
        .env("ANTHROPIC_ENVIRONMENT_KEY", "sk-case3")
        .output();
    match out {
        Ok(out) if out.status.code() == Some(97) => {
            println!(
                "SKIP case03: cannot lower user.max_user_namespaces inside a user namespace here"
            );
            None
        }
        Ok(out) => Some(out),
        Err(e) => {
            println!("SKIP case03: `unshare` (util-linux) is not available: {e}");
            None
        }
    }
}

#[test]
fn case03_no_user_namespaces_fails_closed_naming_the_sysctl() {
    let Some(doctor) = without_user_namespaces("doctor") else {
        return;
    };
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(
        doctor.status.code(),
        Some(2),
        "doctor must say the default policy cannot run:\n{text}"
    );
    assert!(text.contains("user.max_user_namespaces"), "{text}");

    for args in ["worker poll --base-url http://127.0.0.1:9", "demo"] {
        let Some(out) = without_user_namespaces(args) else {
            return;
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "`{args}` must refuse to start:\n{err}"
        );
        assert!(
            err.contains("cannot provide isolation `process`")
                && err.contains("sysctl -w user.max_user_namespaces"),
            "`{args}`: {err}"
        );
    }
    // Choosing the weaker level explicitly is allowed.
    let Some(doctor) = without_user_namespaces("doctor --isolation none") else {
        return;
    };
    assert_eq!(
        doctor.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );
}
