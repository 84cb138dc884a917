//! Sandbox start-up, per-call overhead and idle memory, measured through the same
//! `SessionExecutor` API the worker uses.

use crate::memory::{footprint, process_tree, Footprint};
use crate::{emit_samples, emit_value, sample};
use anyhow::{ensure, Context};
use sandkeep_sandbox::{Isolation, Policy, SessionExecutor, SessionSpec};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Outer bound of one benchmark call; a healthy call takes milliseconds.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(iterations: usize, idle_sessions: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ws = tempfile::tempdir()?;
    std::fs::write(ws.path().join("tiny.txt"), "hello\n")?;
    std::fs::write(ws.path().join("one_kib.txt"), one_kib_text())?;
    let spec = |id: &str, dir: &Path| SessionSpec {
        session_id: id.to_string(),
        workspace: dir.to_path_buf(),
        allowed_roots: vec![],
    };
    let process = Policy::default();
    let none = Policy {
        isolation: Isolation::None,
        ..Policy::default()
    };

    // Warm-up: the first start probes the host and faults in the binary's pages.
    rt.block_on(start_and_call(
        &process,
        &spec("warm", ws.path()),
        "bash",
        json!({"command": "true"}),
    ))?;

    emit_samples("bare_fork_exec_true", &sample(iterations, run_true)?);
    match which("bwrap") {
        Some(bwrap) => emit_samples("bwrap_true", &sample(iterations, || run_bwrap(&bwrap))?),
        None => emit_value("bwrap_missing", "bool", 1.0),
    }
    let read_tiny = json!({"file_path": "tiny.txt"});
    let bash_true = json!({"command": "true"});
    let mut ready_read = Vec::with_capacity(iterations);
    let mut ready_bash = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let s = spec(&format!("ready-{i}"), ws.path());
        ready_read.push(rt.block_on(start_and_call(&process, &s, "read", read_tiny.clone()))?);
        ready_bash.push(rt.block_on(start_and_call(&process, &s, "bash", bash_true.clone()))?);
    }
    emit_samples("sandbox_ready_first_read", &ready_read);
    emit_samples("sandbox_ready_first_bash_true", &ready_bash);

    let read_1k = json!({"file_path": "one_kib.txt"});
    // A real fork+exec inside the session, comparable with a bare fork+exec on the host.
    let bin_true = json!({"command": "/bin/true"});
    for (label, policy) in [("process", &process), ("none", &none)] {
        let mut exec = SessionExecutor::start(policy, &spec(&format!("live-{label}"), ws.path()))?;
        rt.block_on(call_ok(&exec, "bash", bash_true.clone()))?;
        let bash = sample(iterations, || {
            rt.block_on(call_ok(&exec, "bash", bash_true.clone()))
        })?;
        let read = sample(iterations, || {
            rt.block_on(call_ok(&exec, "read", read_1k.clone()))
        })?;
        let exec_true = sample(iterations, || {
            rt.block_on(call_ok(&exec, "bash", bin_true.clone()))
        })?;
        rt.block_on(exec.close());
        emit_samples(&format!("call_bin_true_{label}"), &exec_true);
        emit_samples(&format!("call_bash_true_{label}"), &bash);
        emit_samples(&format!("call_read_1kib_{label}"), &read);
    }
    // Bare fork+exec again, right next to the per-call numbers it is compared with.
    emit_samples("bare_fork_exec_true_again", &sample(iterations, run_true)?);

    rt.block_on(idle_memory(&process, idle_sessions))
}

/// Start a session, get one answer, and return the time to that answer; the
/// close happens outside the measured span.
async fn start_and_call(
    policy: &Policy,
    spec: &SessionSpec,
    tool: &str,
    input: Value,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut exec = SessionExecutor::start(policy, spec)?;
    call_ok(&exec, tool, input).await?;
    let elapsed = t.elapsed();
    exec.close().await;
    Ok(elapsed)
}

async fn call_ok(exec: &SessionExecutor, tool: &str, input: Value) -> anyhow::Result<()> {
    let out = exec.call(tool, input, CALL_TIMEOUT).await;
    ensure!(!out.is_error, "{tool} failed: {}", out.joined_text());
    Ok(())
}

/// Hold `n` idle sandboxes (each answered one `read`, so no shell runs) and
/// measure their init processes and this process's growth.
async fn idle_memory(policy: &Policy, n: usize) -> anyhow::Result<()> {
    let me = std::process::id() as i32;
    let before = footprint("self")?;
    // Children left from earlier phases (e.g. an init still being reaped) are not counted.
    let earlier: Vec<i32> = process_tree(me)[1..].to_vec();
    let dirs: Vec<tempfile::TempDir> = (0..n)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut sessions = Vec::with_capacity(n);
    for (i, dir) in dirs.iter().enumerate() {
        std::fs::write(dir.path().join("tiny.txt"), "hello\n")?;
        let exec = SessionExecutor::start(
            policy,
            &SessionSpec {
                session_id: format!("idle-{i}"),
                workspace: dir.path().to_path_buf(),
                allowed_roots: vec![],
            },
        )?;
        call_ok(&exec, "read", json!({"file_path": "tiny.txt"})).await?;
        sessions.push(exec);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sandbox_pids: Vec<i32> = process_tree(me)[1..]
        .iter()
        .copied()
        .filter(|p| !earlier.contains(p))
        .collect();
    ensure!(
        sandbox_pids.len() >= n,
        "expected at least {n} sandbox processes under pid {me}, found {}",
        sandbox_pids.len()
    );
    let mut total = Footprint::default();
    for pid in &sandbox_pids {
        total =
            total + footprint(&pid.to_string()).with_context(|| format!("sandbox pid {pid}"))?;
    }
    let after = footprint("self")?;
    emit_value("idle_sessions", "count", n as f64);
    emit_value("idle_sandbox_processes", "count", sandbox_pids.len() as f64);
    emit_value("idle_sandbox_rss_total", "KiB", total.rss_kib as f64);
    emit_value("idle_sandbox_pss_total", "KiB", total.pss_kib as f64);
    emit_value(
        "idle_host_rss_delta",
        "KiB",
        after.rss_kib as f64 - before.rss_kib as f64,
    );
    emit_value(
        "idle_host_pss_delta",
        "KiB",
        after.pss_kib as f64 - before.pss_kib as f64,
    );
    for mut s in sessions {
        s.close().await;
    }
    Ok(())
}

fn run_true() -> anyhow::Result<()> {
    let st = Command::new("/bin/true")
        .status()
        .context("running /bin/true")?;
    ensure!(st.success(), "/bin/true exited with {st}");
    Ok(())
}

fn run_bwrap(bwrap: &Path) -> anyhow::Result<()> {
    let st = Command::new(bwrap)
        .args(["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/"])
        .args(["--dev", "/dev", "--proc", "/proc", "true"])
        .stderr(Stdio::piped())
        .output()
        .context("running bwrap")?;
    ensure!(
        st.status.success(),
        "bwrap exited with {}: {}",
        st.status,
        String::from_utf8_lossy(&st.stderr)
    );
    Ok(())
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// 1 KiB of text in 16 lines of 64 bytes.
fn one_kib_text() -> String {
    (0..16)
        .map(|i| format!("{i:02} {}\n", "x".repeat(60)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_kib_is_exactly_1024_bytes() {
        assert_eq!(one_kib_text().len(), 1024);
    }

    #[test]
    fn finds_sh_on_path() {
        assert!(which("sh").is_some());
    }
}
