//! `sandkeep emulator` as a child process plus the HTTP calls the tests make
//! against it (admin key unless stated).

use super::process::{capture_lines, clean_command, Lines};
use super::{wait_for, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

/// An environment, its key and an agent with the agent toolset.
#[derive(Debug, Clone)]
pub struct Setup {
    pub env_id: String,
    pub env_key: String,
    pub agent_id: String,
}

/// A running emulator; killed on drop.
pub struct Emulator {
    child: Child,
    pub base_url: String,
    http: reqwest::Client,
    logs: Lines,
}

impl Emulator {
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// Start with extra flags (e.g. `--lease-ttl 4`) and read the listening address
    /// from the first stdout line.
    pub fn start_with(extra: &[&str]) -> Emulator {
        let mut args: Vec<String> = ["emulator", "--listen", "127.0.0.1:0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut command = clean_command(&args);
        command.env("RUST_LOG", "warn");
        let mut child = command.spawn().expect("spawn sandkeep emulator");
        let logs = Lines::default();
        capture_lines(child.stderr.take().unwrap(), logs.clone());
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let prefix = "sandkeep emulator listening on ";
        let base_url = loop {
            match rx.recv_timeout(Duration::from_secs(15)) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix(prefix) {
                        break url.trim().to_string();
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!(
                        "the emulator did not print its address ({e}); stderr: {:?}",
                        logs.lock().unwrap()
                    );
                }
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("build the HTTP client");
        Emulator {
            child,
            base_url,
            http,
            logs,
        }
    }

    /// Any call; returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        (status, value)
    }

    /// A call that must succeed (2xx).
    pub async fn ok(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.call(method.clone(), path, key, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} → {status}: {value}"
        );
        value
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        self.ok(Method::GET, path, ADMIN_KEY, None).await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        self.ok(Method::POST, path, ADMIN_KEY, Some(&body)).await
    }

    /// A self-hosted environment, an environment key and a toolset agent.
    pub async fn setup(&self) -> Setup {
        let env = self
            .admin_post(
                "/v1/environments",
                json!({"name": "e2e", "config": {"type": "self_hosted"}}),
            )
            .await;
        let env_id = env["id"].as_str().expect("environment id").to_string();
        let key = self
            .admin_post(
                &format!("/v1/emulator/environments/{env_id}/keys"),
                json!({}),
            )
            .await;
        let agent_id = self
            .agent(json!({"tools": [{"type": "agent_toolset_20260401"}]}))
            .await;
        Setup {
            env_id,
            env_key: key["key"].as_str().expect("environment key").to_string(),
            agent_id,
        }
    }

    /// Create an agent from `fields` (name and model are filled in).
    pub async fn agent(&self, fields: Value) -> String {
        let mut body = json!({"name": "e2e-agent", "model": "claude-test"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().cloned().unwrap_or_default());
        let agent = self.admin_post("/v1/agents", body).await;
        agent["id"].as_str().expect("agent id").to_string()
    }

    /// A scenario session whose first turn starts at once (an initial `user.message`).
    pub async fn scenario_session(&self, setup: &Setup, agent_id: &str, scenario: Value) -> String {
        let body = json!({
            "agent": agent_id,
            "environment_id": setup.env_id,
            "scenario": scenario,
            "initial_events": [{"type": "user.message", "content": [{"type": "text", "text": "go"}]}],
        });
        let session = self.admin_post("/v1/emulator/sessions", body).await;
        session["id"].as_str().expect("session id").to_string()
    }

    /// Post a client event (e.g. `user.message`, `user.custom_tool_result`).
    pub async fn send_event(&self, session_id: &str, event: Value) -> Value {
        self.admin_post(
            &format!("/v1/sessions/{session_id}/events"),
            json!({"events": [event]}),
        )
        .await
    }

    pub async fn send_message(&self, session_id: &str, text: &str) {
        self.send_event(
            session_id,
            json!({"type": "user.message", "content": [{"type": "text", "text": text}]}),
        )
        .await;
    }

    /// Append agent-side events verbatim (admin endpoint).
    pub async fn inject_events(&self, session_id: &str, events: Value) -> Value {
        self.admin_post(
            &format!("/v1/emulator/sessions/{session_id}/events"),
            json!({"events": events}),
        )
        .await
    }

    pub async fn arm_faults(&self, faults: Value) -> Value {
        self.admin_post("/v1/emulator/faults", faults).await
    }

    pub async fn clear_faults(&self) {
        self.ok(Method::DELETE, "/v1/emulator/faults", ADMIN_KEY, None)
            .await;
    }

    pub async fn scenario_state(&self, session_id: &str) -> Value {
        self.admin_get(&format!("/v1/emulator/sessions/{session_id}/scenario"))
            .await
    }

    /// The whole event history, oldest first.
    pub async fn events(&self, session_id: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut path = format!("/v1/sessions/{session_id}/events?limit=1000");
            if let Some(p) = &page {
                path.push_str(&format!("&page={p}"));
            }
            let body = self.admin_get(&path).await;
            all.extend(body["data"].as_array().cloned().unwrap_or_default());
            match body["next_page"].as_str() {
                Some(next) if !next.is_empty() => page = Some(next.to_string()),
                _ => return all,
            }
        }
    }

    /// The work item of `session_id` (found with the environment key, then read
    /// with the admin key), if it exists.
    pub async fn work_for_session(&self, setup: &Setup, session_id: &str) -> Option<Value> {
        let path = format!("/v1/environments/{}/work?limit=1000", setup.env_id);
        let list = self.ok(Method::GET, &path, &setup.env_key, None).await;
        let id = list["data"]
            .as_array()?
            .iter()
            .find(|w| w["data"]["id"] == session_id)?["id"]
            .as_str()?
            .to_string();
        Some(
            self.admin_get(&format!("/v1/environments/{}/work/{id}", setup.env_id))
                .await,
        )
    }

    /// Wait until the session's work item satisfies `pred`; returns the item.
    pub async fn wait_work(
        &self,
        setup: &Setup,
        session_id: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let what = format!("the work item of {session_id} to be {what}");
        wait_for(&what, timeout, || async {
            self.work_for_session(setup, session_id)
                .await
                .filter(|w| pred(w))
        })
        .await
    }

    pub async fn wait_stopped(&self, setup: &Setup, session_id: &str, timeout: Duration) -> Value {
        self.wait_work(setup, session_id, "stopped", timeout, |w| {
            w["state"] == "stopped"
        })
        .await
    }

    /// Wait until the scenario has run every turn; panics with its failures
    /// unless it passed. Returns the final scenario state.
    pub async fn wait_scenario_passed(&self, session_id: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        let state = loop {
            let state = self.scenario_state(session_id).await;
            if state["complete"] == true {
                break state;
            }
            if std::time::Instant::now() >= deadline {
                panic!("the scenario of {session_id} did not complete within {timeout:?}; state: {state:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            state["passed"], true,
            "scenario failed: {:#}",
            state["failures"]
        );
        state
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let logs = self.logs();
            if !logs.is_empty() {
                eprintln!("---- emulator stderr ----\n{}", logs.join("\n"));
            }
        }
    }
}
