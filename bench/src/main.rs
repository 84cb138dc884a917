//! `skbench`: the in-process half of `scripts/bench`.
//!
//! * `skbench sandbox ITERATIONS IDLE_SESSIONS` — sandbox start-up (bare
//!   fork+exec, bwrap, `SessionExecutor` to first `read` / `bash true` answer),
//!   per-call overhead in a live sandbox, and memory per idle sandbox.
//! * `skbench tools ROOT OUTDIR RUNS (glob|grep):PATTERN...` — sandkeep's glob and
//!   grep through `Toolset::call`, timed, outputs written for comparison.
//!
//! * `skbench nullworker BASE_URL KEY SESSION_ID` — a worker that does nothing: it
//!   answers every `agent.tool_use` of one session at once with a fixed result,
//!   through the same SSE + HTTP path. Its round trip is the floor that the control
//!   plane and the wire cost whatever the worker (benchmark 4).
//!
//! Every measurement is printed as one JSON object per line on stdout
//! (`{"name", "unit": "us", "samples": [...]}` or `{"name", "value"}`); the
//! driver (`bench/run.py`) computes the statistics and writes the report.
//! The binary is also its own sandbox init (`__sandbox-init`), like `sandkeep`.

mod memory;
mod nullworker;
mod sandbox;
mod tools;

use std::time::{Duration, Instant};

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == sandkeep_sandbox::INIT_ARG)
    {
        sandkeep_sandbox::init_main();
    }
    if let Err(e) = run() {
        eprintln!("skbench: {e:#}");
        std::process::exit(1);
    }
}

const USAGE: &str = "usage: skbench sandbox ITERATIONS IDLE_SESSIONS\n       \
                     skbench tools ROOT OUTDIR RUNS (glob|grep):PATTERN...\n       \
                     skbench nullworker BASE_URL KEY SESSION_ID";

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sandbox") if args.len() == 3 => {
            let iterations = parse_count(&args[1], "ITERATIONS")?;
            let idle = parse_count(&args[2], "IDLE_SESSIONS")?;
            sandbox::run(iterations, idle)
        }
        Some("tools") if args.len() >= 5 => {
            let runs = parse_count(&args[3], "RUNS")?;
            tools::run(args[1].as_ref(), args[2].as_ref(), runs, &args[4..])
        }
        Some("nullworker") if args.len() == 4 => nullworker::run(&args[1], &args[2], &args[3]),
        _ => anyhow::bail!("{USAGE}"),
    }
}

fn parse_count(s: &str, what: &str) -> anyhow::Result<usize> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => anyhow::bail!("{what} must be a positive integer, got {s:?}\n{USAGE}"),
    }
}

/// Print a series of durations (microseconds) as one JSON line.
pub fn emit_samples(name: &str, samples: &[Duration]) {
    let us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    println!(
        "{}",
        serde_json::json!({"name": name, "unit": "us", "samples": us})
    );
}

/// Print one scalar measurement as one JSON line.
pub fn emit_value(name: &str, unit: &str, value: f64) {
    println!(
        "{}",
        serde_json::json!({"name": name, "unit": unit, "value": value})
    );
}

/// Time `f` `n` times.
pub fn sample(
    n: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Duration>> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f()?;
            Ok(t.elapsed())
        })
        .collect()
}
