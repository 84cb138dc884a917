//! Sandbox start-up and per-call overhead, against a bare fork+exec of /bin/true.
//!
//! `cargo run -p sandkeep-sandbox --example sandbox_bench -- [ITERATIONS]`
//! (run as root or as a user with unprivileged user namespaces). The example is
//! its own sandbox init, so no `SANDKEEP_INIT_EXE` is needed.

use sandkeep_sandbox::process::SandboxSession;
use sandkeep_sandbox::{Policy, SessionSpec};
use serde_json::json;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == sandkeep_sandbox::INIT_ARG)
    {
        sandkeep_sandbox::init_main();
    }
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);
    let ws = tempfile::tempdir()?;
    let spec = SessionSpec {
        session_id: "bench".into(),
        workspace: ws.path().to_path_buf(),
        allowed_roots: vec![],
    };
    let policy = Policy::default();

    let bare = sample(iterations, || {
        std::process::Command::new("/bin/true").status().map(drop)?;
        Ok(())
    })?;
    let (mut ready, mut first_call) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        let t = Instant::now();
        let mut s = SandboxSession::start(&policy, &spec)?;
        ready.push(s.ready_after);
        let out = s.call("bash", json!({"command": "true"}), None);
        anyhow::ensure!(
            !out.is_error,
            "bash true failed in the sandbox: {}",
            out.joined_text()
        );
        first_call.push(t.elapsed());
        s.close();
    }
    let mut s = SandboxSession::start(&policy, &spec)?;
    s.call("bash", json!({"command": "true"}), None);
    let per_call = sample(iterations * 10, || {
        let out = s.call("bash", json!({"command": "true"}), None);
        anyhow::ensure!(!out.is_error, "{}", out.joined_text());
        Ok(())
    })?;
    s.call("write", json!({"file_path": "f.txt", "content": "x"}), None);
    let read_call = sample(iterations * 10, || {
        s.call("read", json!({"file_path": "f.txt"}), None);
        Ok(())
    })?;
    s.close();

    let p50 = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (bare, ready, first, per_call, read_call) = (
        p50(&mut bare.clone()),
        p50(&mut ready),
        p50(&mut first_call),
        p50(&mut per_call.clone()),
        p50(&mut read_call.clone()),
    );
    println!("iterations                         {iterations}");
    println!("bare fork+exec /bin/true p50       {:>8.3} ms", ms(bare));
    println!("spawn -> init ready p50            {:>8.3} ms", ms(ready));
    println!(
        "spawn -> first `bash true` p50     {:>8.3} ms  (over bare: {:+.3} ms)",
        ms(first),
        ms(first) - ms(bare)
    );
    println!(
        "`bash true` per call p50           {:>8.3} ms",
        ms(per_call)
    );
    println!(
        "`read` per call p50                {:>8.3} ms",
        ms(read_call)
    );
    Ok(())
}

fn sample(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<Duration>> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f()?;
            Ok(t.elapsed())
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
