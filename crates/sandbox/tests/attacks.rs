//! sandbox.md §4 attack cases against `isolation = "process"` (run as root here).

mod common;

use common::*;
use sandkeep_sandbox::Policy;
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Instant;

#[tokio::test]
async fn case01_02_protected_symlinks_and_missing_paths() {
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("hooksdir")).unwrap();
    std::fs::create_dir(ws.path().join(".git")).unwrap();
    symlink("../hooksdir", ws.path().join(".git/hooks")).unwrap();
    symlink(outside.path(), ws.path().join(".git/config")).unwrap();
    let Some(mut ex) = start("case01", &Policy::default(), ws.path()) else {
        return;
    };
    // Case 1: the symlinked directory inside the workspace stays read-only.
    fails(&ex, "echo x > .git/hooks/pre-commit").await;
    fails(&ex, "echo x > hooksdir/pre-commit").await;
    // Case 2: the link to the outside leads nowhere writable; commands still run.
    ok(&ex, "true").await;
    fails(&ex, "echo x > .git/config/y").await;
    ok(&ex, "echo fine > other.txt").await;
    ex.close().await;
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());

    // Missing protected paths get read-only placeholders, removed again at close.
    let ws = tempfile::tempdir().unwrap();
    let Some(mut ex) = start("case01b", &Policy::default(), ws.path()) else {
        return;
    };
    fails(&ex, "mkdir -p .git/hooks/x").await;
    fails(&ex, "echo '[core]' > .git/config").await;
    fails(&ex, "echo x > .git/hooks/post-checkout").await;
    ex.close().await;
    assert!(!ws.path().join(".git").exists(), "placeholders left behind");
}

#[tokio::test]
async fn protected_paths_cannot_be_moved_and_git_still_works() {
    let ws = tempfile::tempdir().unwrap();
    let git_init = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(ws.path())
        .status();
    if !git_init.is_ok_and(|s| s.success()) {
        println!("SKIP protected_paths_cannot_be_moved_and_git_still_works: no git");
        return;
    }
    let Some(mut ex) = start("protect_git", &Policy::default(), ws.path()) else {
        return;
    };
    for cmd in [
        "mv .git .gitx",
        "mv .git/config .git/c2",
        "rm -rf .git/hooks",
        "rmdir .git",
    ] {
        fails(&ex, cmd).await;
    }
    let log = ok(
        &ex,
        "echo hi > f && git add f && git -c user.name=t -c user.email=t@example.com \
         commit -qm first && git log --oneline | wc -l",
    )
    .await;
    assert_eq!(log.trim(), "1");
    // The workload's uid has a name inside.
    assert_eq!(ok(&ex, "id -un; echo $HOME").await, "sandbox\n/workspace");
    ex.close().await;
    assert!(ws.path().join(".git/config").is_file());
}

#[tokio::test]
async fn case04_06_08_loopback_works_and_no_network() {
    let ws = tempfile::tempdir().unwrap();
    let Some(mut ex) = start("case04", &Policy::default(), ws.path()) else {
        return;
    };
    let out = ok(
        &ex,
        "python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); \
         c=socket.create_connection(s.getsockname()); print('loopback ok')\"",
    )
    .await;
    assert!(out.contains("loopback ok"));
    let out = fails(&ex, "exec 3<>/dev/tcp/1.1.1.1/80").await;
    assert!(out.contains("unreachable"), "{out}");
    let out = fails(
        &ex,
        "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 443), timeout=2)\"",
    )
    .await;
    assert!(out.contains("unreachable"), "{out}");
    fails(&ex, "python3 -c \"import socket; socket.create_connection(('2606:4700:4700::1111', 443), timeout=2)\"").await;
    fails(&ex, "sh -c 'curl -sk --max-time 2 https://1.1.1.1/'").await;
    fails(
        &ex,
        "curl -sk --max-time 2 'https://[2606:4700:4700::1111]/'",
    )
    .await;
    ex.close().await;
}

#[tokio::test]
async fn case09_10_11_12_readonly_policy_and_host_paths() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("data")).unwrap();
    std::fs::write(ws.path().join("data/secret.txt"), "keep").unwrap();
    std::fs::create_dir_all(ws.path().join("ro")).unwrap();
    let policy = Policy {
        read_only_paths: vec![PathBuf::from("ro"), PathBuf::from("data/secret.txt")],
        ..Policy::default()
    };
    let passwd_before = std::fs::read("/etc/passwd").unwrap();
    let Some(mut ex) = start("case09", &policy, ws.path()) else {
        return;
    };
    fails(&ex, "echo x > ro/new").await;
    fails(&ex, "mount -t tmpfs none ro").await;
    fails(&ex, "mkdir -p /tmp/t && mount --bind /tmp/t ro").await;
    // Case 10: deny inside allow.
    ok(&ex, "echo x > data/other.txt").await;
    fails(&ex, "echo x > data/secret.txt").await;
    fails(&ex, "rm data/secret.txt").await;
    // Case 11 and 12.
    fails(&ex, "echo x > ../outside.env").await;
    fails(&ex, "echo x >> /root/.bashrc").await;
    fails(&ex, "touch /home/x").await;
    fails(&ex, "echo x > /etc/passwd").await;
    fails(&ex, "echo x > /usr/bin/x").await;
    let shadow = ok(&ex, "wc -c < /etc/shadow").await;
    assert_eq!(shadow.trim(), "0", "/etc/shadow must be masked");
    ex.close().await;
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd_before);
    assert!(
        !std::path::Path::new("/usr/bin/x").exists() && !std::path::Path::new("/home/x").exists()
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("data/secret.txt")).unwrap(),
        "keep"
    );
}

#[tokio::test]
async fn case13_14_file_tools_obey_the_same_policy() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("real/sub")).unwrap();
    symlink("real/sub", ws.path().join("linked")).unwrap();
    std::fs::create_dir_all(ws.path().join("ro")).unwrap();
    let policy = Policy {
        read_only_paths: vec![PathBuf::from("ro")],
        ..Policy::default()
    };
    let Some(mut ex) = start("case13", &policy, ws.path()) else {
        return;
    };
    let (err, text) = call(
        &ex,
        "write",
        json!({"file_path": "/etc/evil", "content": "x"}),
    )
    .await;
    assert!(err, "{text}");
    let (err, text) = call(
        &ex,
        "write",
        json!({"file_path": "/workspace/../etc/evil", "content": "x"}),
    )
    .await;
    assert!(err, "{text}");
    let (err, _) = call(
        &ex,
        "write",
        json!({"file_path": "ro/x.txt", "content": "x"}),
    )
    .await;
    assert!(err);
    let (err, _) = call(
        &ex,
        "write",
        json!({"file_path": ".git/hooks/pre-commit", "content": "x"}),
    )
    .await;
    assert!(err);
    // Case 14: symlinked subdirectories inside the workspace stay writable.
    let (err, text) = call(
        &ex,
        "write",
        json!({"file_path": "linked/a.txt", "content": "hello"}),
    )
    .await;
    assert!(!err, "{text}");
    ok(&ex, "echo more >> linked/a.txt").await;
    let (err, text) = call(&ex, "read", json!({"file_path": "linked/a.txt"})).await;
    assert!(
        !err && text.contains("hello") && text.contains("more"),
        "{text}"
    );
    ex.close().await;
    assert!(ws.path().join("real/sub/a.txt").exists());
    assert!(!std::path::Path::new("/etc/evil").exists());
}

#[tokio::test]
async fn case15_16_timeouts_and_daemons_leave_nothing() {
    let ws = tempfile::tempdir().unwrap();
    let Some(mut ex) = start("case15", &Policy::default(), ws.path()) else {
        return;
    };
    let t = Instant::now();
    let (err, text) = call(
        &ex,
        "bash",
        json!({"command": "sleep 300 & wait", "timeout_ms": 200}),
    )
    .await;
    let took = t.elapsed();
    assert!(err && text.contains("timed out"), "{text}");
    assert!(took.as_millis() < 1500, "timeout took {took:?}");
    call(&ex, "bash", json!({"restart": true})).await;
    let ps = ok(&ex, "ps -eo comm=").await;
    assert!(!ps.lines().any(|l| l.trim() == "sleep"), "{ps}");
    // Case 16: a detached descendant keeping a port open dies with its call.
    ok(&ex, "setsid python3 -c \"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',8765)); s.listen(); time.sleep(300)\" >/dev/null 2>&1 & sleep 0.5").await;
    let ps = ok(&ex, "ps -eo comm=").await;
    assert!(!ps.lines().any(|l| l.trim() == "python3"), "{ps}");
    ex.close().await;
}

#[tokio::test]
async fn case18_no_credentials_inside() {
    let ws = tempfile::tempdir().unwrap();
    let Some(mut ex) = start("case18", &Policy::default(), ws.path()) else {
        return;
    };
    for cmd in [
        "env",
        "cat /proc/1/environ | tr '\\0' '\\n'",
        "cat /proc/*/environ | tr '\\0' '\\n'",
        "ps auxe",
        "cat /proc/1/cmdline",
        "grep -rs canary / --exclude-dir=proc --exclude-dir=sys -l | head",
    ] {
        let (_, text) = bash(&ex, cmd).await;
        assert!(!text.contains(CANARY), "`{cmd}` leaked the canary: {text}");
    }
    ex.close().await;
}

#[tokio::test]
async fn case20_tmp_is_bounded() {
    let ws = tempfile::tempdir().unwrap();
    let policy = Policy {
        tmp_mib: 8,
        ..Policy::default()
    };
    let Some(mut ex) = start("case20", &policy, ws.path()) else {
        return;
    };
    let out = fails(&ex, "head -c 20M /dev/zero > /tmp/big").await;
    assert!(out.contains("No space left"), "{out}");
    let size = ok(&ex, "stat -c %s /tmp/big").await;
    assert!(size.trim().parse::<u64>().unwrap() <= 8 << 20);
    ex.close().await;
}

#[tokio::test]
async fn case21_escalation_tools_are_denied() {
    let ws = tempfile::tempdir().unwrap();
    let Some(mut ex) = start("case21", &Policy::default(), ws.path()) else {
        return;
    };
    fails(&ex, "unshare -r true").await;
    fails(&ex, "unshare -m true").await;
    fails(&ex, "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m").await;
    fails(&ex, "nsenter -t 1 -m true").await;
    fails(&ex, "strace -f true").await;
    let gdb = ok(&ex, "gdb -batch -p 1 2>&1 || true").await;
    assert!(gdb.contains("ptrace: Operation not permitted"), "{gdb}");
    let out = ok(
        &ex,
        "python3 -c \"import ctypes; print(ctypes.CDLL(None).ptrace(16, 1, 0, 0))\"",
    )
    .await;
    assert_eq!(out.trim(), "-1");
    let caps = ok(&ex, "grep -E 'CapEff|CapBnd|NoNewPrivs' /proc/self/status").await;
    assert!(
        caps.contains("CapEff:\t0000000000000000") && caps.contains("CapBnd:\t0000000000000000"),
        "{caps}"
    );
    assert!(caps.contains("NoNewPrivs:\t1"), "{caps}");
    ok(&ex, "test \"$(hostname)\" = sandkeep").await;
    ex.close().await;
}

#[tokio::test]
async fn case22_sessions_are_separate() {
    let (wa, wb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let Some(mut a) = start("case22a", &Policy::default(), wa.path()) else {
        return;
    };
    let Some(mut b) = start("case22b", &Policy::default(), wb.path()) else {
        return;
    };
    ok(
        &a,
        "echo secret-a > /tmp/a.txt; echo secret-a > a.txt; (sleep 120 &) ; true",
    )
    .await;
    fails(&b, "cat /tmp/a.txt").await;
    let ps = ok(&b, "ps -eo comm").await;
    assert!(!ps.contains("sleep"), "{ps}");
    let found = ok(&b, &format!("ls {} 2>&1 || true", wa.path().display())).await;
    assert!(found.contains("No such file"), "{found}");
    // Ids are namespaced: the init (and the workload) show their ns uid, not the
    // host uid of the session's range (sandbox.md §3: a non-zero uid inside).
    let id_a = ok(&a, "stat -c %u /proc/1; id -u; id -g").await;
    assert_eq!(id_a.split_whitespace().collect::<Vec<_>>(), ["1000"; 3]);
    a.close().await;
    b.close().await;
}
