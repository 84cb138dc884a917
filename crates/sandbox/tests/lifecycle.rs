//! Resource limits, OOM reporting, soak and teardown of `process` sessions.

mod common;

use common::*;
use sandkeep_sandbox::Policy;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn fd_count(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn session_cgroups(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for ctl in ["memory", "pids", "cpu"] {
        if let Ok(dir) = std::fs::read_dir(Path::new("/sys/fs/cgroup").join(ctl).join("sandkeep")) {
            found.extend(
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(name)),
            );
        }
    }
    found
}

#[tokio::test]
async fn case17_oom_is_reported_and_session_survives() {
    let ws = tempfile::tempdir().unwrap();
    let policy = Policy {
        memory_mib: 64,
        ..Policy::default()
    };
    let Some(mut ex) = start("case17", &policy, ws.path()) else {
        return;
    };
    let (err, text) = bash(
        &ex,
        "python3 -c \"b = bytearray(128 << 20); print(len(b))\"",
    )
    .await;
    if sandkeep_sandbox::probe_host().limits == sandkeep_sandbox::limits::LimitsBackend::Rlimits {
        println!("SKIP case17 OOM text: no cgroup (rlimits only): {text}");
    } else {
        assert!(
            err && text.starts_with("killed: out of memory, limit 64 MiB"),
            "{text}"
        );
    }
    assert_eq!(ok(&ex, "echo still-here").await.trim(), "still-here");
    ex.close().await;
}

#[tokio::test]
async fn case19_fork_bomb_is_contained() {
    let ws = tempfile::tempdir().unwrap();
    let policy = Policy {
        pids: 64,
        ..Policy::default()
    };
    let Some(mut ex) = start("case19", &policy, ws.path()) else {
        return;
    };
    // The bomb backgrounds itself, so the call returns at once; the worker sees the
    // session reach its limit, kills everything and restarts the shell.
    let (is_error, text) = call(
        &ex,
        "bash",
        json!({"command": ":(){ :|:& };:", "timeout_ms": 2000}),
    )
    .await;
    assert!(
        is_error && text.starts_with("killed: process limit of 64 reached"),
        "{text}"
    );
    for dir in session_dirs("pids", "case19") {
        let current: u64 = std::fs::read_to_string(dir.join("pids.current"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            current <= 3,
            "pids.current = {current} after the bomb's call"
        );
    }
    assert_eq!(ok(&ex, "echo alive").await.trim(), "alive");
    let n = ok(&ex, "ps -e --no-headers | wc -l").await;
    assert!(
        n.trim().parse::<u32>().unwrap() <= 4,
        "leftover processes: {n}"
    );
    ex.close().await;
}

#[tokio::test]
async fn case07_soak_2000_calls_no_zombies_constant_fds() {
    let ws = tempfile::tempdir().unwrap();
    let Some(mut ex) = start("case07", &Policy::default(), ws.path()) else {
        return;
    };
    ok(&ex, "true").await;
    let init_pid = ok(&ex, "true; echo $PPID").await; // bash's parent is the init (pid 1 inside)
    assert_eq!(init_pid.trim(), "1");
    let worker_fds = fd_count("self");
    for i in 0..2000 {
        let (err, text) = bash(&ex, "true").await;
        assert!(!err, "call {i}: {text}");
    }
    let zombies = ok(&ex, "ps -eo stat= | grep -c Z || true").await;
    assert_eq!(zombies.trim(), "0");
    let init_fds = ok(
        &ex,
        "ls /proc/1/fd 2>/dev/null | wc -l; ls /proc/$$/fd | wc -l",
    )
    .await;
    println!("init/bash fds after soak: {init_fds}");
    assert!(
        fd_count("self") <= worker_fds + 2,
        "worker fds grew: {worker_fds} -> {}",
        fd_count("self")
    );
    ex.close().await;
}

#[tokio::test]
async fn close_and_drop_leave_nothing_behind() {
    let ws = tempfile::tempdir().unwrap();
    setup();
    let policy = Policy::default();
    if let Err(why) = sandkeep_sandbox::probe_host().supports(&policy) {
        println!("SKIP close_and_drop: {why}");
        return;
    }
    let spec = sandkeep_sandbox::SessionSpec {
        session_id: "teardown".into(),
        workspace: ws.path().to_path_buf(),
        allowed_roots: vec![],
    };
    let mut s = sandkeep_sandbox::process::SandboxSession::start(&policy, &spec).unwrap();
    let pid = s.init_pid().unwrap();
    let out = s.call(
        "bash",
        json!({"command": "sleep 300 & (setsid sleep 301 &) ; echo started"}),
        None,
    );
    assert!(!out.is_error, "{}", out.joined_text());
    assert!(
        !session_cgroups("teardown").is_empty()
            || sandkeep_sandbox::probe_host().limits
                == sandkeep_sandbox::limits::LimitsBackend::Rlimits
    );
    s.close();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "init survived close"
    );
    assert!(
        session_cgroups("teardown").is_empty(),
        "cgroups left: {:?}",
        session_cgroups("teardown")
    );
    assert!(!host_has_sleep_300(), "a sleep survived the session");

    // Drop without close also kills the init.
    let ws2 = tempfile::tempdir().unwrap();
    let Some(ex) = start("dropped", &policy, ws2.path()) else {
        return;
    };
    ok(&ex, "sleep 302 >/dev/null 2>&1 &").await;
    drop(ex);
    for _ in 0..200 {
        if session_cgroups("dropped").is_empty() && !host_has_sleep_300() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "dropping the executor left {:?} / sleep alive: {}",
        session_cgroups("dropped"),
        host_has_sleep_300()
    );
}

fn session_dirs(ctl: &str, name: &str) -> Vec<std::path::PathBuf> {
    let base = Path::new("/sys/fs/cgroup").join(ctl).join("sandkeep");
    session_cgroups(name)
        .into_iter()
        .map(|n| base.join(n))
        .filter(|p| p.exists())
        .collect()
}

fn host_has_sleep_300() -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x0030"))
    })
}
