//! §4 cases 15, 16, 21 and 22: timeouts and daemons leave no process behind,
//! escalation tools are denied, and two sessions on one worker cannot see each
//! other's processes, files or environment.

use crate::host::{procs_with, Footprint, SANDBOX_UID_BASE};
use crate::rig::{nonce, Rig, Session};
use serde_json::json;
use std::time::{Duration, Instant};

/// Wait up to `grace` for host processes whose argv contains `marker` to go.
async fn assert_no_host_process(marker: &str, grace: Duration) {
    let deadline = Instant::now() + grace;
    loop {
        let left = procs_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes survived on the host: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A daemon that double-forks, calls setsid and listens on 127.0.0.1:`port`.
const DAEMON: &str = r#"import os, socket, sys, time
if os.fork(): os._exit(0)
os.setsid()
if os.fork(): os._exit(0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
for fd in (0, 1, 2): os.close(fd)
time.sleep(300)
"#;

#[tokio::test]
async fn case15_16_timeouts_and_daemons_leave_nothing() {
    let Some(mut rig) = Rig::new("case15_16").await else {
        return;
    };
    rig.start_worker(&[]);
    let s = rig.session().await;
    s.ok("true").await;

    // Control: the host does see such a sleep while its call runs.
    let control = format!("sleep 300.{}", nonce());
    let started = Instant::now();
    let ids = s
        .post_calls(&[(
            "bash",
            json!({"command": format!("{control} & wait"), "timeout_ms": 1000}),
        )])
        .await;
    let mut seen = Vec::new();
    while seen.is_empty() && started.elapsed() < Duration::from_millis(900) {
        seen = procs_with(&control);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !seen.is_empty(),
        "the control sleep never showed up on the host"
    );
    assert!(seen.iter().all(|p| p.uid >= SANDBOX_UID_BASE), "{seen:?}");
    let out = s
        .wait(&ids, started, Duration::from_secs(10))
        .await
        .remove(0);
    assert!(
        out.is_error && out.text.contains("timed out"),
        "{}",
        out.text
    );
    assert_no_host_process(&control, Duration::ZERO).await;

    // Case 15: a 200 ms timeout on `sleep 300 & wait`.
    let marker = format!("sleep 300.{}", nonce());
    let out = s
        .call(
            "bash",
            json!({"command": format!("{marker} & wait"), "timeout_ms": 200}),
        )
        .await;
    println!(
        "case15: timed-out call answered after {:?}: {}",
        out.elapsed,
        out.text.lines().next().unwrap_or("")
    );
    assert!(
        out.is_error && out.text.contains("timed out"),
        "{}",
        out.text
    );
    assert!(
        out.elapsed < Duration::from_millis(1500),
        "the 200 ms timeout took {:?}",
        out.elapsed
    );
    // The result is posted after the kill: nothing to wait for.
    assert_no_host_process(&marker, Duration::ZERO).await;
    let ps = s.ok("ps -eo args=").await;
    assert!(!ps.contains("sleep 300"), "{ps}");

    // Case 16: a double-forked, setsid daemon holding a port.
    if s.has("python3").await {
        let out = s
            .call(
                "write",
                json!({"file_path": "daemon.py", "content": DAEMON}),
            )
            .await;
        assert!(!out.is_error, "{}", out.text);
        let port = 18_765;
        let tag = format!("daemon.py {port} {}", nonce());
        let listening = s
            .ok(&format!(
                "python3 {tag}; for i in $(seq 50); do ss -ltnH | grep -q ':{port} ' && break; sleep 0.05; done; ss -ltnH"
            ))
            .await;
        assert!(listening.contains(&format!(":{port}")), "{listening}");
        let after = s
            .ok(&format!(
                "ss -ltnH; awk 'NR>1 && $4==\"0A\"' /proc/net/tcp | grep -ic ':{port:04X} ' || true; ps -eo args="
            ))
            .await;
        assert!(
            !after.contains(&format!(":{port}")) && !after.contains("daemon.py"),
            "the daemon survived its call: {after}"
        );
        assert_no_host_process(&tag, Duration::ZERO).await;
    }
    rig.finish().await;
}

#[tokio::test]
async fn case21_escalation_is_denied() {
    let Some(mut rig) = Rig::new("case21").await else {
        return;
    };
    rig.start_worker(&[]);
    let s = rig.session().await;
    for cmd in [
        "unshare -r true",
        "unshare -m true",
        "unshare -n true",
        "unshare -U true",
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
        "mount --bind /tmp /workspace",
        "nsenter -t 1 -m true",
        "nsenter -t 1 -U true",
        "chroot / true",
    ] {
        s.fails(cmd).await;
    }
    if s.has("strace").await {
        let out = s.fails("strace -f true").await;
        assert!(out.contains("Operation not permitted"), "{out}");
    }
    if s.has("gdb").await {
        let out = s.ok("gdb -batch -p 1 2>&1 || true").await;
        assert!(out.contains("ptrace: Operation not permitted"), "{out}");
    }
    if s.has("python3").await {
        // PTRACE_ATTACH (16) to the init and PTRACE_TRACEME (0): both -1.
        let out = s
            .ok("python3 -c \"import ctypes; l = ctypes.CDLL(None); print(l.ptrace(16, 1, 0, 0), l.ptrace(0, 0, 0, 0))\"")
            .await;
        assert_eq!(out.trim(), "-1 -1", "ptrace was allowed");
    }
    let caps = s
        .ok("grep -E 'CapEff|CapPrm|CapBnd|NoNewPrivs' /proc/self/status")
        .await;
    for expected in [
        "CapEff:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "NoNewPrivs:\t1",
    ] {
        assert!(caps.contains(expected), "missing {expected:?}: {caps}");
    }
    rig.finish().await;
}

/// sandbox.md §3: "workload runs as a non-zero uid inside the user namespace".
#[tokio::test]
async fn spec3_workload_runs_as_a_non_zero_uid_inside() {
    let Some(mut rig) = Rig::new("spec3_uid").await else {
        return;
    };
    rig.start_worker(&[]);
    let s = rig.session().await;
    let ids = s.ok("id -u; id -g").await;
    assert!(
        ids.lines().all(|l| l.trim() != "0"),
        "the workload runs as root inside its namespace: {ids}"
    );
    rig.finish().await;
}

/// What `other` can find of `owner`'s files, processes and environment while
/// `owner` runs a call with argv `marker`.
async fn assert_cannot_see(owner: &Session<'_>, other: &Session<'_>, tag: &str) {
    let rig = owner.rig;
    let marker = format!("sleep 3.{}", nonce());
    let started = Instant::now();
    let ids = owner
        .post_calls(&[("bash", json!({"command": marker.clone()}))])
        .await;
    let host = loop {
        let found = procs_with(&marker);
        if !found.is_empty() || started.elapsed() > Duration::from_secs(2) {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!host.is_empty(), "{tag}'s call did not start");
    let owner_ws = rig.workspace(&owner.id).display().to_string();
    let secret = format!("secret-{tag}");
    let seen = other
        .ok(&format!(
            "ps auxww; ls -la {owner_ws} 2>&1; find {owner_ws} 2>&1; cat {owner_ws}/marker.txt 2>&1; \
             ls -la /workspace/.. 2>&1; cat /tmp/{tag}.txt 2>&1; cat ../{id}/marker.txt 2>&1; \
             env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; true",
            id = owner.id
        ))
        .await;
    for needle in [marker.as_str(), secret.as_str(), &format!("env-{tag}")] {
        assert!(
            !seen.contains(needle),
            "the other session saw {needle:?} of {tag}: {seen}"
        );
    }
    for (tool, input) in [
        (
            "read",
            json!({"file_path": format!("{owner_ws}/marker.txt")}),
        ),
        (
            "read",
            json!({"file_path": format!("../{}/marker.txt", owner.id)}),
        ),
        ("glob", json!({"pattern": "*", "path": owner_ws})),
        ("grep", json!({"pattern": "secret", "path": owner_ws})),
    ] {
        let out = other.call(tool, input.clone()).await;
        let leaked = if tool == "read" {
            !out.is_error || out.text.contains(&secret)
        } else {
            out.text.contains(&secret) || out.text.contains("marker.txt")
        };
        assert!(!leaked, "{tool} {input} showed {tag}'s files: {}", out.text);
    }
    // On the host the two sessions run under different subordinate uid ranges.
    let range = |uid: u32| (uid - SANDBOX_UID_BASE) / 65_536;
    let other_uids: Vec<u32> = Footprint::of(&other.id)
        .procs
        .iter()
        .map(|p| p.uid)
        .collect();
    for p in &host {
        assert!(p.uid >= SANDBOX_UID_BASE, "{p:?}");
        assert!(
            other_uids.iter().all(|u| range(*u) != range(p.uid)),
            "{tag}'s {p:?} shares a uid range with the other session ({other_uids:?})"
        );
    }
    let done = owner.wait(&ids, started, Duration::from_secs(30)).await;
    assert!(!done[0].is_error, "{:?}", done[0]);
}

#[tokio::test]
async fn case22_two_sessions_cannot_see_each_other() {
    let Some(mut rig) = Rig::new("case22").await else {
        return;
    };
    rig.start_worker(&[]);
    let a = rig.session().await;
    let b = rig.session().await;
    for (s, tag) in [(&a, "a"), (&b, "b")] {
        s.ok(&format!(
            "echo secret-{tag} > marker.txt; echo secret-{tag} > /tmp/{tag}.txt; export MINE=env-{tag}"
        ))
        .await;
        let out = s.call("read", json!({"file_path": "marker.txt"})).await;
        assert!(out.text.contains(&format!("secret-{tag}")), "{}", out.text);
    }
    assert_cannot_see(&a, &b, "a").await;
    assert_cannot_see(&b, &a, "b").await;
    rig.finish().await;
}
