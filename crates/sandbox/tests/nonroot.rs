//! `process` isolation as an unprivileged user: single-uid map, rlimits when no
//! cgroup is writable. The outer test (root) re-runs this binary as a test user.

mod common;

use common::*;
use sandkeep_sandbox::Policy;
use std::process::Command;

const USER: &str = "sandkeeptest";

#[test]
fn unprivileged_user_gets_a_working_sandbox() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!(
            "SKIP unprivileged_user_gets_a_working_sandbox: needs root to create the test user"
        );
        return;
    }
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists
        && !Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", USER])
            .status()
            .is_ok_and(|s| s.success())
    {
        println!("SKIP unprivileged_user_gets_a_working_sandbox: useradd {USER} failed");
        return;
    }
    let out = Command::new("runuser")
        .args(["-u", USER, "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "inner_as_unprivileged_user",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("SANDKEEP_NONROOT_INNER", "1")
        .env("TMPDIR", "/tmp")
        .output()
        .expect("runuser");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("SKIP") {
        println!("{text}");
        return;
    }
    println!("{text}");
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[tokio::test]
#[ignore = "run by unprivileged_user_gets_a_working_sandbox as the test user"]
async fn inner_as_unprivileged_user() {
    assert_eq!(std::env::var("SANDKEEP_NONROOT_INNER").as_deref(), Ok("1"));
    let ws = tempfile::tempdir().unwrap();
    let report = sandkeep_sandbox::probe_host();
    println!("{report}");
    let Some(mut ex) = start("nonroot", &Policy::default(), ws.path()) else {
        return;
    };
    assert_eq!(ok(&ex, "id -u").await.trim(), "0");
    ok(&ex, "echo hi > f.txt").await;
    fails(&ex, "echo x > /etc/passwd").await;
    fails(&ex, "unshare -r true").await;
    fails(&ex, "exec 3<>/dev/tcp/1.1.1.1/80").await;
    let limits = ok(&ex, "ulimit -u; ulimit -v").await;
    println!("limits inside: {limits}");
    ex.close().await;
    assert_eq!(
        std::fs::read_to_string(ws.path().join("f.txt")).unwrap(),
        "hi\n"
    );
}
