//! Child processes of the binary under test: output captured line by line on a
//! thread, killed (SIGKILL) and reaped on drop, logs dumped when a test panics.

use super::{sandkeep_bin, wait_for, Setup};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines a child wrote, shared with the thread that reads them.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// Copy every line of `pipe` into `lines` until EOF (on a thread, so a chatty
/// child never blocks on a full pipe).
pub fn capture_lines(pipe: impl Read + Send + 'static, lines: Lines) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(line) => lines.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
}

/// A base command with a clean environment: nothing from the test runner's
/// environment (which may hold real `ANTHROPIC_*` credentials) reaches the child.
pub fn clean_command(args: &[String]) -> Command {
    let mut command = Command::new(sandkeep_bin());
    command
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// How to start a worker; [`WorkerArgs::poll`] gives the usual test defaults.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
}

impl WorkerArgs {
    /// `worker poll` for `setup`'s environment with `--isolation none --max-idle 1s`
    /// and a short drain timeout. The key goes in via the environment variable, so
    /// it doubles as a canary the worker must never log or leak.
    pub fn poll(base_url: &str, setup: &Setup, workdir: &Path) -> WorkerArgs {
        let args = [
            "worker",
            "poll",
            "--environment-id",
            &setup.env_id,
            "--base-url",
            base_url,
            "--workdir",
            &workdir.display().to_string(),
            "--max-idle",
            "1s",
            "--isolation",
            "none",
            "--drain-timeout",
            "5s",
        ];
        WorkerArgs {
            args: args.iter().map(|s| s.to_string()).collect(),
            envs: vec![("ANTHROPIC_ENVIRONMENT_KEY".into(), setup.env_key.clone())],
        }
    }

    /// Append flags (later flags override earlier ones for single-valued options).
    pub fn arg(mut self, args: &[&str]) -> WorkerArgs {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> WorkerArgs {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Replace `--flag value` (used for `--isolation`, `--max-idle`).
    pub fn set(mut self, flag: &str, value: &str) -> WorkerArgs {
        match self.args.iter().position(|a| a == flag) {
            Some(i) => self.args[i + 1] = value.to_string(),
            None => self.args.extend([flag.to_string(), value.to_string()]),
        }
        self
    }
}

/// A running `sandkeep worker …` child.
pub struct Worker {
    child: Child,
    name: String,
    stderr: Lines,
    stdout: Lines,
}

impl Worker {
    pub fn spawn(name: &str, spec: &WorkerArgs) -> Worker {
        let mut command = clean_command(&spec.args);
        for (k, v) in &spec.envs {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn the sandkeep worker");
        let stderr = Lines::default();
        let stdout = Lines::default();
        capture_lines(child.stderr.take().unwrap(), stderr.clone());
        capture_lines(child.stdout.take().unwrap(), stdout.clone());
        Worker {
            child,
            name: name.to_string(),
            stderr,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the worker logged on stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub fn logs_text(&self) -> String {
        self.logs().join("\n")
    }

    /// Wait until a stderr line contains `needle`; returns that line.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let what = format!("worker {} to log {needle:?}", self.name);
        wait_for(&what, timeout, || async {
            self.logs().into_iter().find(|l| l.contains(needle))
        })
        .await
    }

    /// `None` while the process is still running.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .expect("query the worker's exit status")
    }

    /// Wait for the process to exit, or panic after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                // Give the capture threads a moment to read the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "worker {} did not exit within {timeout:?}; its log:\n{}",
                    self.name,
                    self.logs_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as a service manager would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // SANDKEEP_E2E_LOGS=1 shows the logs of passing tests too (with --nocapture).
        if std::thread::panicking() || std::env::var_os("SANDKEEP_E2E_LOGS").is_some() {
            eprintln!(
                "---- worker {} stderr ----\n{}",
                self.name,
                self.logs_text()
            );
            let stdout = self.stdout.lock().unwrap().join("\n");
            if !stdout.is_empty() {
                eprintln!("---- worker {} stdout ----\n{stdout}", self.name);
            }
        }
    }
}

/// Run the binary to completion (bounded by `timeout`, then killed); returns the
/// exit status, stdout and stderr.
pub async fn run_to_exit(
    args: &[&str],
    envs: &[(&str, &str)],
    timeout: Duration,
) -> (ExitStatus, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let spec = WorkerArgs {
        args,
        envs: envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let mut worker = Worker::spawn("cli", &spec);
    let status = worker.wait_exit(timeout).await;
    let stdout = worker.stdout.lock().unwrap().join("\n");
    (status, stdout, worker.logs_text())
}
