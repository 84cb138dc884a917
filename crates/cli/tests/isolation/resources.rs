//! §4 cases 7, 17, 19 and 20: a 5 000-call soak (no zombies, constant fds in the
//! worker and the session's init), out-of-memory and fork-bomb containment with a
//! neighbouring session unaffected, and a bounded `/tmp`.

use crate::host::{self, fd_count, Footprint};
use crate::rig::{has_cgroups, nonce, Rig};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SOAK_CALLS: usize = 5_000;
const SOAK_BATCH: usize = 500;

#[tokio::test]
async fn case07_soak_5000_calls_no_zombies_constant_fds() {
    let Some(mut rig) = Rig::new("case07").await else {
        return;
    };
    // Info logs would add a line per call; warnings still show problems.
    let spec = rig.worker_args().env("RUST_LOG", "warn");
    rig.worker = Some(crate::common::Worker::spawn("case07", &spec));
    let s = rig.session().await;
    s.ok("true").await;
    let footprint = Footprint::of(&s.id);
    footprint.assert_live("case07");
    let init = footprint.init().map(|p| p.pid);
    let worker_pid = rig.worker().pid() as i32;

    let batch: Vec<(&str, Value)> = (0..SOAK_BATCH)
        .map(|_| ("bash", json!({"command": "true"})))
        .collect();
    let started = Instant::now();
    let mut at_500 = None;
    for n in 1..=SOAK_CALLS / SOAK_BATCH {
        let outcomes = s.calls(&batch, Duration::from_secs(120)).await;
        let failed: Vec<_> = outcomes.iter().filter(|o| o.is_error).collect();
        assert!(
            failed.is_empty(),
            "{} calls failed: {:?}",
            failed.len(),
            failed.first()
        );
        // Quiet between batches: nothing in flight, so fds are comparable.
        let counts = (fd_count(worker_pid), init.map(fd_count));
        if n == 1 {
            at_500 = Some(counts);
        }
    }
    let took = started.elapsed();
    let at_5000 = (fd_count(worker_pid), init.map(fd_count));
    println!(
        "case07: {SOAK_CALLS} bash calls through the worker in {took:?} ({:.0} calls/s); \
         fds (worker, init) at call 500: {at_500:?}, at call 5000: {at_5000:?}",
        SOAK_CALLS as f64 / took.as_secs_f64()
    );
    let (worker_500, init_500) = at_500.unwrap();
    // The worker's HTTP pool may hold one connection more or less at a given moment.
    assert!(
        at_5000.0 <= worker_500 + 2,
        "worker fds grew from {worker_500} to {}",
        at_5000.0
    );
    assert_eq!(at_5000.1, init_500, "the init's fd count changed");
    let zombies = s.ok("ps -eo stat= | grep -c Z || true").await;
    assert_eq!(zombies.trim(), "0", "zombies inside the sandbox");
    let now = Footprint::of(&s.id);
    let host_zombies: Vec<_> = now.procs.iter().filter(|p| p.state == 'Z').collect();
    assert!(
        host_zombies.is_empty(),
        "zombies on the host: {host_zombies:?}"
    );
    assert!(
        now.procs.len() <= footprint.procs.len() + 1,
        "the session grew from {:?} to {:?}",
        footprint.procs,
        now.procs
    );
    rig.finish().await;
}

fn pids_current(session_id: &str) -> Option<u64> {
    host::session_cgroups(session_id)
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"))
        .and_then(|d| std::fs::read_to_string(d.join("pids.current")).ok())
        .and_then(|s| s.trim().parse().ok())
}

#[tokio::test]
async fn case17_19_oom_and_fork_bomb_are_contained() {
    let Some(mut rig) = Rig::new("case17_19").await else {
        return;
    };
    rig.start_worker(&["--memory-mib", "64", "--pids", "64"]);
    let a = rig.session().await;
    let b = rig.session().await;
    assert_eq!(
        b.ok("export B_STATE=kept; echo ready").await.trim(),
        "ready"
    );

    // Case 17: twice the memory limit, while the neighbour works.
    let hog = if a.has("python3").await {
        "python3 -c \"b = bytearray(128 << 20); print(len(b))\""
    } else {
        "head -c 200M /dev/zero | tail"
    };
    let (oom, neighbour) = tokio::join!(a.bash(hog), b.bash("sleep 1; echo \"$B_STATE\""));
    assert!(
        !neighbour.is_error && neighbour.text.trim() == "kept",
        "{neighbour:?}"
    );
    if has_cgroups() {
        assert!(
            oom.is_error && oom.text.starts_with("killed: out of memory"),
            "the OOM kill was not reported as such: {oom:?}"
        );
    } else {
        println!("SKIP case17 OOM text: no cgroups on this host (rlimits only): {oom:?}");
        assert!(oom.is_error, "{oom:?}");
    }
    assert_eq!(a.ok("echo still-here").await.trim(), "still-here");

    // Case 19: a fork bomb, sampled from the host while it runs.
    let started = Instant::now();
    let ids = a
        .post_calls(&[(
            "bash",
            json!({"command": ":(){ :|:& };:", "timeout_ms": 3000}),
        )])
        .await;
    let mut peak = 0;
    let sample_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < sample_until {
        peak = peak.max(pids_current(&a.id).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bomb = a
        .wait(&ids, started, Duration::from_secs(30))
        .await
        .remove(0);
    println!(
        "case19: fork bomb → is_error={} after {:?}, peak pids.current={peak}: {}",
        bomb.is_error,
        bomb.elapsed,
        bomb.text.chars().take(200).collect::<String>()
    );
    assert!(peak <= 64, "pids.current reached {peak} > 64");
    let during = b.bash("echo b-fine").await;
    assert!(
        !during.is_error && during.text.contains("b-fine"),
        "{during:?}"
    );
    let alive = a.bash("echo alive").await;
    if alive.is_error || alive.text.trim() != "alive" {
        println!(
            "case19: the call after the bomb needed a shell restart: is_error={}, {}",
            alive.is_error,
            alive.text.chars().take(200).collect::<String>()
        );
        a.call("bash", json!({"restart": true})).await;
        assert_eq!(a.ok("echo alive").await.trim(), "alive");
    }
    let left = a.ok("ps -e --no-headers | wc -l").await;
    assert!(
        left.trim().parse::<u32>().unwrap() <= 4,
        "bomb processes survived the call: {left}"
    );
    assert_eq!(b.ok("echo \"$B_STATE\"").await.trim(), "kept");
    rig.assert_worker_alive();
    let panics = rig.worker().logs_text();
    assert!(!panics.contains("panicked"), "{panics}");
    rig.finish().await;
}

/// The strict form of case 19: like any call's descendants (case 16), the bomb
/// dies when its call ends, so the next call neither needs a shell restart nor
/// shows the bomb's output.
#[tokio::test]
async fn case19_fork_bomb_dies_with_its_call() {
    let Some(mut rig) = Rig::new("case19_strict").await else {
        return;
    };
    rig.start_worker(&["--pids", "64"]);
    let s = rig.session().await;
    s.ok("true").await;
    let bomb = s
        .call(
            "bash",
            json!({"command": ":(){ :|:& };:", "timeout_ms": 3000}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut left = pids_current(&s.id);
    while left.is_some_and(|n| n > 3) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = pids_current(&s.id);
    }
    assert!(
        left.is_none_or(|n| n <= 3),
        "{left:?} processes remain 1 s after the bomb's call returned ({bomb:?})"
    );
    let next = s.bash("echo alive").await;
    assert!(
        !next.is_error && next.text == "alive",
        "the call after the bomb: {next:?}"
    );
    rig.finish().await;
}

#[tokio::test]
async fn case20_tmp_is_a_bounded_tmpfs() {
    let Some(mut rig) = Rig::new("case20").await else {
        return;
    };
    rig.start_worker(&["--tmp-mib", "16"]);
    let s = rig.session().await;
    let nonce = nonce();
    assert_eq!(s.ok("stat -f -c %T /tmp").await.trim(), "tmpfs");
    let out = s
        .fails(&format!("head -c 40M /dev/zero > /tmp/big-{nonce}"))
        .await;
    assert!(out.contains("No space left on device"), "{out}");
    let size: u64 = s
        .ok(&format!("stat -c %s /tmp/big-{nonce}"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(size <= 16 << 20, "/tmp held {size} bytes");
    // Nothing of it on the host's disk.
    let name = format!("big-{nonce}");
    for dir in ["/tmp", "/var/tmp"] {
        let path = std::path::Path::new(dir).join(&name);
        assert!(!path.exists(), "{} exists on the host", path.display());
    }
    assert!(
        !walk_contains(rig.dir.path(), &name),
        "{name} landed in the worker's directory"
    );
    s.ok(&format!("rm /tmp/big-{nonce}")).await;
    rig.finish().await;
}

fn walk_contains(dir: &std::path::Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name().to_string_lossy() == name
                || (e.file_type().is_ok_and(|t| t.is_dir()) && walk_contains(&e.path(), name))
        })
}
