//! Sandbox start-up and per-call overhead, against a bare fork+exec of /bin/true
//! (and bubblewrap, when installed).
//!
//! `cargo run --release -p sandkeep-sandbox --example sandbox_bench -- [ITERATIONS]`
//! (default 200; run as root or as a user with unprivileged user namespaces). The
//! example is its own sandbox init, so no `SANDKEEP_INIT_EXE` is needed.
//!
//! * "ready": `SessionExecutor::start` (uid slot, cgroups, chown, clone, init
//!   setup) until the first `read` call is answered — the first tool call can run.
//! * "first `bash true`": the next call of the same session; bash starts lazily,
//!   so this is the shell's start-up inside the sandbox.
//!
//! Every session is cold: fresh namespaces, cgroups, uid slot and mounts. The only
//! thing reused across sessions is the worker's zygote (started by the first
//! session, which is not counted).

use sandkeep_sandbox::{Policy, SessionExecutor, SessionSpec};
use serde_json::json;
use std::process::{Command, Stdio};
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
        .unwrap_or(200);
    anyhow::ensure!(iterations >= 2, "ITERATIONS must be at least 2");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let ws = tempfile::tempdir()?;
    std::fs::write(ws.path().join("f.txt"), "x\n")?;
    let spec = SessionSpec {
        session_id: "bench".into(),
        workspace: ws.path().to_path_buf(),
        allowed_roots: vec![],
    };
    let policy = Policy::default();

    let mut report = Report::default();
    report.add(
        "bare fork+exec /bin/true",
        sample(iterations, || run_quiet(&mut Command::new("/bin/true")))?,
    );
    if run_quiet(Command::new("bwrap").args(bwrap_args())).is_ok() {
        report.add(
            "bwrap --unshare-all /bin/true",
            sample(iterations, || {
                run_quiet(Command::new("bwrap").args(bwrap_args()))
            })?,
        );
    } else {
        println!("(bubblewrap not installed or not usable here: `apt-get install -y bubblewrap`)");
    }

    let read = json!({"file_path": "f.txt"});
    let bash_true = json!({"command": "true"});
    let call = |ex: &SessionExecutor, tool: &str, input: &serde_json::Value| {
        let out = rt.block_on(ex.call(tool, input.clone(), Duration::from_secs(60)));
        anyhow::ensure!(
            !out.is_error,
            "{tool} failed in the sandbox: {}",
            out.joined_text()
        );
        Ok(())
    };
    // Warm-up (not counted): starts the zygote and faults in the binary.
    {
        let mut ex = SessionExecutor::start(&policy, &spec)?;
        call(&ex, "read", &read)?;
        rt.block_on(ex.close());
    }
    let (mut ready, mut first_bash, mut start_to_bash) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations {
        let t = Instant::now();
        let mut ex = SessionExecutor::start(&policy, &spec)?;
        call(&ex, "read", &read)?;
        let r = t.elapsed();
        call(&ex, "bash", &bash_true)?;
        let b = t.elapsed();
        ready.push(r);
        first_bash.push(b - r);
        start_to_bash.push(b);
        rt.block_on(ex.close());
    }
    report.add("sandbox ready (start → first `read` answered)", ready);
    report.add("first `bash true` (shell start-up)", first_bash);
    report.add("start → first `bash true` done", start_to_bash);

    let mut ex = SessionExecutor::start(&policy, &spec)?;
    call(&ex, "bash", &bash_true)?;
    report.add(
        "`bash true` per call",
        sample(iterations * 5, || call(&ex, "bash", &bash_true))?,
    );
    report.add(
        "`read` per call",
        sample(iterations * 5, || call(&ex, "read", &read))?,
    );
    rt.block_on(ex.close());

    println!(
        "iterations {iterations} (per-call rows: {})",
        iterations * 5
    );
    report.print();
    Ok(())
}

fn bwrap_args() -> [&'static str; 10] {
    [
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "/bin/true",
    ]
}

fn run_quiet(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
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

#[derive(Default)]
struct Report {
    rows: Vec<(&'static str, Vec<Duration>)>,
}

impl Report {
    fn add(&mut self, name: &'static str, mut samples: Vec<Duration>) {
        samples.sort();
        self.rows.push((name, samples));
    }

    fn print(&self) {
        let pct = |v: &[Duration], p: f64| {
            let i = ((v.len() - 1) as f64 * p).round() as usize;
            v[i].as_secs_f64() * 1000.0
        };
        let bare = self.rows.first().map(|(_, v)| pct(v, 0.5)).unwrap_or(0.0);
        println!(
            "{:<48} {:>9} {:>9} {:>9}  {:>10}",
            "", "p50 ms", "p99 ms", "min ms", "p50 − bare"
        );
        for (name, v) in &self.rows {
            println!(
                "{name:<48} {:>9.3} {:>9.3} {:>9.3}  {:>+10.3}",
                pct(v, 0.5),
                pct(v, 0.99),
                pct(v, 0.0),
                pct(v, 0.5) - bare
            );
        }
    }
}
