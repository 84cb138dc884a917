//! The rig every isolation test uses: an emulator, a `sandkeep worker poll
//! --isolation process` child started with canary credentials, and agent-driven
//! sessions whose tool calls are posted as agent-side events through the admin
//! endpoint and whose results are read back from the event log.
//!
//! `Rig::finish` ends every session it created the way an operator would
//! (`session.status_terminated`), then checks on the host that nothing of the
//! session survived and that no secret reached a tool result or the worker's log.

use crate::common::{all_result_text, Emulator, Setup, Worker, WorkerArgs};
use crate::host::{self, Footprint};
use serde_json::{json, Value};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Credentials planted in the worker's environment that must never surface.
#[derive(Debug, Clone)]
pub struct Canaries {
    /// The random part every canary shares (searchable without spelling a canary out).
    pub token: String,
    pub api_key: String,
    pub aws_secret: String,
    pub ssh_sock: String,
}

impl Canaries {
    fn new() -> Canaries {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let token = format!("{:x}{:x}", nanos, std::process::id());
        Canaries {
            api_key: format!("sk-ant-canary-{token}"),
            aws_secret: format!("canary-{token}-aws"),
            ssh_sock: format!("/tmp/canary-{token}-ssh"),
            token,
        }
    }

    /// A shell word that expands to `canary-<token>` without containing it.
    pub fn shell_pattern(&self) -> String {
        format!("'canary-''{}'", self.token)
    }
}

/// A short value unique to this call, for file names and argv markers.
pub fn nonce() -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{n}{}", std::process::id(), nanos % 100_000)
}

/// What `sandkeep doctor --isolation process` said: `Ok(report)` when this host
/// can sandbox, else the reason.
pub fn doctor() -> &'static Result<String, String> {
    static DOCTOR: OnceLock<Result<String, String>> = OnceLock::new();
    DOCTOR.get_or_init(|| {
        let out = crate::common::process::clean_command(&[
            "doctor".to_string(),
            "--isolation".to_string(),
            "process".to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run sandkeep doctor: {e}"))?;
        let report = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            Ok(report)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!("{} {}", report.trim(), stderr.trim()))
        }
    })
}

/// Whether the host limits sessions with cgroups (not only rlimits).
pub fn has_cgroups() -> bool {
    doctor()
        .as_ref()
        .is_ok_and(|r| r.lines().any(|l| l.contains("cgroup v")))
}

/// One tool call's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub is_error: bool,
    pub text: String,
    /// From posting the call to seeing its result in the event log.
    pub elapsed: Duration,
}

/// Fields drop in order: the worker goes before the emulator it talks to.
pub struct Rig {
    pub name: String,
    pub worker: Option<Worker>,
    pub emulator: Emulator,
    pub setup: Setup,
    pub dir: tempfile::TempDir,
    pub canaries: Canaries,
    sessions: Mutex<Vec<String>>,
}

impl Rig {
    /// An emulator and a workdir, or `None` (after printing SKIP) when the host
    /// cannot sandbox.
    pub async fn new(name: &str) -> Option<Rig> {
        if let Err(why) = doctor() {
            println!("SKIP {name}: sandkeep doctor says this host cannot sandbox: {why}");
            return None;
        }
        let emulator = Emulator::start();
        let setup = emulator.setup().await;
        let dir = crate::common::workdir();
        // The sandbox's own uid must be able to traverse --workdir.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        Some(Rig {
            name: name.to_string(),
            worker: None,
            emulator,
            setup,
            dir,
            canaries: Canaries::new(),
            sessions: Mutex::new(Vec::new()),
        })
    }

    /// Every value that must never leave the worker.
    pub fn secrets(&self) -> Vec<String> {
        vec![
            self.canaries.api_key.clone(),
            self.canaries.aws_secret.clone(),
            self.canaries.ssh_sock.clone(),
            self.setup.env_key.clone(),
        ]
    }

    /// `worker poll --isolation process` with the canaries in its environment and
    /// an idle timeout long enough not to interfere (agent-driven sessions never
    /// end a turn anyway).
    pub fn worker_args(&self) -> WorkerArgs {
        WorkerArgs::poll(&self.emulator.base_url, &self.setup, self.dir.path())
            .set("--isolation", "process")
            .set("--max-idle", "60s")
            .env("ANTHROPIC_API_KEY", &self.canaries.api_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.canaries.aws_secret)
            .env("SSH_AUTH_SOCK", &self.canaries.ssh_sock)
    }

    pub fn start_worker(&mut self, extra: &[&str]) {
        let spec = self.worker_args().arg(extra);
        self.worker = Some(Worker::spawn(&self.name, &spec));
    }

    pub fn worker(&self) -> &Worker {
        self.worker.as_ref().expect("start_worker was called")
    }

    /// A plain session (no scenario): its calls come from [`Session::call`].
    pub async fn create_session(&self) -> String {
        let body = json!({"agent": self.setup.agent_id, "environment_id": self.setup.env_id});
        let session = self.emulator.admin_post("/v1/sessions", body).await;
        let id = session["id"].as_str().expect("session id").to_string();
        self.sessions.lock().unwrap().push(id.clone());
        id
    }

    /// A scenario session (see docs/emulator.md), tracked like the others.
    pub async fn scenario_session(&self, scenario: Value) -> String {
        let id = self
            .emulator
            .scenario_session(&self.setup, &self.setup.agent_id, scenario)
            .await;
        self.sessions.lock().unwrap().push(id.clone());
        id
    }

    pub fn attach(&self, id: &str) -> Session<'_> {
        Session {
            rig: self,
            id: id.to_string(),
        }
    }

    pub async fn session(&self) -> Session<'_> {
        let id = self.create_session().await;
        self.attach(&id)
    }

    /// The host directory the worker gives session `id`.
    pub fn workspace(&self, id: &str) -> PathBuf {
        self.dir.path().join("sessions").join(id)
    }

    /// Create the session's workspace before the worker claims it, so a test can
    /// plant files and symlinks (the worker reuses an existing directory).
    pub fn prepare_workspace(&self, id: &str) -> PathBuf {
        let sessions = self.dir.path().join("sessions");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&sessions)
            .unwrap();
        let ws = sessions.join(id);
        std::fs::DirBuilder::new().mode(0o700).create(&ws).unwrap();
        ws
    }

    /// Panic (with the worker's log) if the worker has exited.
    pub fn assert_worker_alive(&self) {
        if let Some(worker) = &self.worker {
            assert!(
                host::is_running(worker.pid()),
                "worker {} exited; log:\n{}",
                self.name,
                worker.logs_text()
            );
        }
    }

    /// Terminate every live session, check its host footprint is gone and its
    /// workspace removed, then scan every result and the worker's log for secrets.
    pub async fn finish(self) {
        let ids = self.sessions.lock().unwrap().clone();
        let mut ended = Vec::new();
        for id in &ids {
            let footprint = Footprint::of(id);
            let work = self.emulator.work_for_session(&self.setup, id).await;
            if work.as_ref().is_some_and(|w| w["state"] == "stopped") {
                continue; // already over (e.g. a scenario with terminate_after)
            }
            footprint.assert_live(&format!("{} session {id}", self.name));
            self.terminate(id).await;
            ended.push((id.clone(), footprint));
        }
        for (id, footprint) in ended {
            self.emulator
                .wait_stopped(&self.setup, &id, Duration::from_secs(15))
                .await;
            host::assert_gone(&self.name, &id, &footprint).await;
            host::assert_no_leftover_dirs(&id, &self.workspace(&id)).await;
        }
        self.assert_no_secret_leaked(&ids).await;
    }

    pub async fn terminate(&self, id: &str) {
        self.emulator
            .inject_events(id, json!([{"type": "session.status_terminated"}]))
            .await;
    }

    /// No secret in any tool result of `ids`, nor in the worker's log.
    pub async fn assert_no_secret_leaked(&self, ids: &[String]) {
        let secrets = self.secrets();
        for id in ids {
            let results = all_result_text(&self.emulator.events(id).await);
            for s in &secrets {
                assert!(
                    !results.contains(s.as_str()),
                    "{}: a secret ({}…) leaked into a tool result of {id}",
                    self.name,
                    &s[..8.min(s.len())]
                );
            }
        }
        if let Some(worker) = &self.worker {
            let logs = worker.logs_text();
            for s in &secrets {
                assert!(
                    !logs.contains(s.as_str()),
                    "{}: a secret leaked into the worker's log:\n{logs}",
                    self.name
                );
            }
        }
    }
}

/// An agent-driven session of a [`Rig`].
pub struct Session<'a> {
    pub rig: &'a Rig,
    pub id: String,
}

impl Session<'_> {
    /// Post one call as an `agent.tool_use` event and wait for its result.
    pub async fn call(&self, tool: &str, input: Value) -> Outcome {
        self.calls(&[(tool, input)], Duration::from_secs(60))
            .await
            .remove(0)
    }

    /// Post `calls` in one batch (the worker runs them in order) and wait for all
    /// results, at most `timeout`.
    pub async fn calls(&self, calls: &[(&str, Value)], timeout: Duration) -> Vec<Outcome> {
        let started = Instant::now();
        let ids = self.post_calls(calls).await;
        self.wait(&ids, started, timeout).await
    }

    /// Post `calls` as `agent.tool_use` events without waiting; returns their ids.
    pub async fn post_calls(&self, calls: &[(&str, Value)]) -> Vec<String> {
        let events: Vec<Value> = calls
            .iter()
            .map(|(name, input)| json!({"type": "agent.tool_use", "name": name, "input": input}))
            .collect();
        self.post(events).await
    }

    /// Wait for the results of the calls `ids` (posted at `started`).
    pub async fn wait(&self, ids: &[String], started: Instant, timeout: Duration) -> Vec<Outcome> {
        let mut found: Vec<Option<Outcome>> = vec![None; ids.len()];
        let deadline = started + timeout;
        let window = (ids.len() * 2 + 10).min(1000);
        loop {
            // The worker answers in order: watch the newest few events until the
            // last call is answered, then read the whole batch once.
            let last_done = found.last().is_some_and(Option::is_some);
            let limit = if ids.len() > 20 && !last_done {
                5
            } else {
                window
            };
            let path = format!("/v1/sessions/{}/events?order=desc&limit={limit}", self.id);
            let recent = self.rig.emulator.admin_get(&path).await;
            for event in recent["data"].as_array().into_iter().flatten() {
                if event["type"] != "user.tool_result" {
                    continue;
                }
                if let Some(i) = ids.iter().position(|id| event["tool_use_id"] == *id) {
                    found[i].get_or_insert_with(|| Outcome {
                        is_error: event["is_error"] == true,
                        text: result_text(event),
                        elapsed: started.elapsed(),
                    });
                }
            }
            if found.iter().all(Option::is_some) {
                return found.into_iter().map(Option::unwrap).collect();
            }
            self.rig.assert_worker_alive();
            if Instant::now() >= deadline {
                let done = found.iter().filter(|f| f.is_some()).count();
                panic!(
                    "{}: only {done}/{} results of session {} within {timeout:?}; worker log:\n{}",
                    self.rig.name,
                    ids.len(),
                    self.id,
                    self.rig.worker().logs_text()
                );
            }
            let pause = if ids.len() > 20 { 50 } else { 15 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// Append agent-side events; returns their ids.
    pub async fn post(&self, events: Vec<Value>) -> Vec<String> {
        let stored = self
            .rig
            .emulator
            .inject_events(&self.id, Value::Array(events))
            .await;
        stored["data"]
            .as_array()
            .expect("stored events")
            .iter()
            .map(|e| e["id"].as_str().expect("event id").to_string())
            .collect()
    }

    pub async fn bash(&self, command: &str) -> Outcome {
        self.call("bash", json!({"command": command})).await
    }

    /// Run `command` and require success; returns its output.
    pub async fn ok(&self, command: &str) -> String {
        let out = self.bash(command).await;
        assert!(
            !out.is_error,
            "{}: `{command}` failed: {}",
            self.rig.name, out.text
        );
        out.text
    }

    /// Run `command` and require an error; returns its output.
    pub async fn fails(&self, command: &str) -> String {
        let out = self.bash(command).await;
        assert!(
            out.is_error,
            "{}: `{command}` should have failed but printed: {}",
            self.rig.name, out.text
        );
        out.text
    }

    /// A file tool call that must fail.
    pub async fn tool_fails(&self, tool: &str, input: Value) -> String {
        let out = self.call(tool, input.clone()).await;
        assert!(
            out.is_error,
            "{}: {tool} {input} should have failed but returned: {}",
            self.rig.name, out.text
        );
        out.text
    }

    /// Whether `program` exists inside the sandbox; prints a note when not.
    pub async fn has(&self, program: &str) -> bool {
        let out = self.bash(&format!("command -v {program}")).await;
        if out.is_error {
            println!(
                "NOTE {}: `{program}` is not available inside the sandbox; its sub-checks are skipped",
                self.rig.name
            );
        }
        !out.is_error
    }
}

/// The text blocks of a result event, joined.
pub fn result_text(event: &Value) -> String {
    event["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether an error text is a kernel denial (EROFS, EACCES or EPERM).
pub fn is_denial(text: &str) -> bool {
    let text = text.to_lowercase();
    [
        "read-only file system",
        "permission denied",
        "operation not permitted",
        // util-linux mount refuses a non-root caller before asking the kernel.
        "must be superuser",
    ]
    .iter()
    .any(|m| text.contains(m))
}
