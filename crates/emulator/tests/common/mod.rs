//! Shared helpers for the emulator's HTTP tests.
#![allow(dead_code)]

use sandkeep_emulator::{Emulator, EmulatorConfig};
use serde_json::{json, Value};

pub const ADMIN: &str = "sk-emu-admin";

pub struct Harness {
    pub emulator: Emulator,
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn start(config: EmulatorConfig) -> Harness {
    let (emulator, addr) = Emulator::spawn(config, "127.0.0.1:0").await.unwrap();
    Harness {
        emulator,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

impl Harness {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    pub async fn ok(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, key, body).await;
        assert_eq!(status, 200, "{method} {path}: {value}");
        value
    }

    /// Environment + its key + an agent; returns (env_id, env_key, agent_id).
    pub async fn setup(&self) -> (String, String, String) {
        let env = self
            .ok(
                "POST",
                "/v1/environments",
                ADMIN,
                Some(json!({"name": "e", "config": {"type": "self_hosted"}})),
            )
            .await;
        let env_id = env["id"].as_str().unwrap().to_string();
        let key = self
            .ok(
                "POST",
                &format!("/v1/emulator/environments/{env_id}/keys"),
                ADMIN,
                None,
            )
            .await;
        let agent = self
            .ok(
                "POST",
                "/v1/agents",
                ADMIN,
                Some(json!({"name": "a", "model": "claude-test", "tools": [{"type": "agent_toolset_20260401"}]})),
            )
            .await;
        (
            env_id,
            key["key"].as_str().unwrap().to_string(),
            agent["id"].as_str().unwrap().to_string(),
        )
    }

    pub async fn session(&self, env_id: &str, agent_id: &str) -> String {
        let s = self
            .ok(
                "POST",
                "/v1/sessions",
                ADMIN,
                Some(json!({"agent": agent_id, "environment_id": env_id})),
            )
            .await;
        s["id"].as_str().unwrap().to_string()
    }

    pub async fn poll(&self, env_id: &str, key: &str) -> Value {
        self.ok(
            "GET",
            &format!("/v1/environments/{env_id}/work/poll?block_ms=50"),
            key,
            None,
        )
        .await
    }
}

/// Decodes the `sessions_token` from a poll response's `secret`.
pub fn sessions_token(item: &Value) -> String {
    use base64::Engine;
    let secret = item["secret"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret)
        .unwrap();
    let payload: Value = serde_json::from_slice(&bytes).unwrap();
    payload["sessions_token"].as_str().unwrap().to_string()
}
