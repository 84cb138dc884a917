//! Shared helpers: an emulator on loopback plus admin calls to script it.
#![allow(dead_code)]

use sandkeep_emulator::{Emulator, EmulatorConfig};
use sandkeep_sandbox::{Isolation, Policy};
use sandkeep_worker::{WorkdirLayout, WorkerConfig};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub const ADMIN: &str = "sk-emu-admin";

pub struct Harness {
    pub emulator: Emulator,
    pub base: String,
    http: reqwest::Client,
}

pub async fn start() -> Harness {
    start_with(EmulatorConfig::default()).await
}

pub async fn start_with(config: EmulatorConfig) -> Harness {
    let (emulator, addr) = Emulator::spawn(config, "127.0.0.1:0").await.unwrap();
    Harness {
        emulator,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

impl Harness {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {value}");
        value
    }

    /// A self-hosted environment and its key.
    pub async fn environment(&self) -> (String, String) {
        let env = self
            .ok(
                "POST",
                "/v1/environments",
                Some(json!({"name": "e", "config": {"type": "self_hosted"}})),
            )
            .await;
        let env_id = env["id"].as_str().unwrap().to_string();
        let key = self
            .ok(
                "POST",
                &format!("/v1/emulator/environments/{env_id}/keys"),
                None,
            )
            .await;
        (env_id, key["key"].as_str().unwrap().to_string())
    }

    pub async fn agent(&self, skills: Value) -> String {
        let body = json!({"name": "a", "model": "claude-test", "tools": [{"type": "agent_toolset_20260401"}], "skills": skills});
        self.ok("POST", "/v1/agents", Some(body)).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A scripted session that starts its first turn right away.
    pub async fn session(&self, env: &str, agent: &str, scenario: Value) -> String {
        let body = json!({
            "agent": agent,
            "environment_id": env,
            "scenario": scenario,
            "initial_events": [{"type": "user.message", "content": [{"type": "text", "text": "go"}]}],
        });
        self.ok("POST", "/v1/emulator/sessions", Some(body)).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn scenario(&self, sid: &str) -> Value {
        self.ok(
            "GET",
            &format!("/v1/emulator/sessions/{sid}/scenario"),
            None,
        )
        .await
    }

    pub async fn work_items(&self, env: &str, key: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!(
                "{}/v1/environments/{env}/work?limit=100",
                self.base
            ))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["data"].as_array().cloned().unwrap_or_default()
    }

    pub async fn events(&self, sid: &str) -> Vec<Value> {
        let page = self
            .ok(
                "GET",
                &format!("/v1/sessions/{sid}/events?limit=1000"),
                None,
            )
            .await;
        page["data"].as_array().cloned().unwrap_or_default()
    }

    pub fn config(&self, env: &str, key: &str, workdir: &Path) -> WorkerConfig {
        WorkerConfig {
            client: sandkeep_api::ClientConfig {
                base_url: self.base.clone(),
                ..Default::default()
            },
            environment_id: Some(env.to_string()),
            environment_key: Some(key.to_string()),
            worker_id: "test-worker".into(),
            workdir: workdir.to_path_buf(),
            layout: WorkdirLayout::PerSession,
            max_idle: Some(Duration::from_millis(300)),
            max_sessions: 2,
            drain_timeout: Duration::from_secs(5),
            drain: true,
            policy: Policy {
                isolation: Isolation::None,
                ..Policy::default()
            },
            ..WorkerConfig::default()
        }
    }
}

/// Wait until `check` holds (polling every 50 ms, at most `secs`).
pub async fn eventually<F: FnMut() -> bool>(secs: u64, mut check: F) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}
