//! Sessions, events, SSE, skills and the scenario engine over HTTP (§6, §7, §11).

mod common;

use common::*;
use futures::StreamExt;
use sandkeep_emulator::{EmulatorConfig, Faults};
use serde_json::{json, Value};
use std::time::Duration;

async fn events(h: &Harness, session: &str) -> Vec<Value> {
    h.ok(
        "GET",
        &format!("/v1/sessions/{session}/events?limit=1000"),
        ADMIN,
        None,
    )
    .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn scenario_runs_a_turn_and_checks_expectations() {
    let h = start(EmulatorConfig::default()).await;
    let (env, key, agent) = h.setup().await;
    let scenario = json!({"turns": [{
        "calls": [{"name": "bash", "input": {"command": "echo hi"}, "expect": {"is_error": false, "contains": ["hi"]}}],
        "steps": [[
            {"name": "read", "input": {"file_path": "x"}, "expect": {"equals": "content"}},
            {"name": "lookup", "kind": "custom", "input": {}}
        ]],
        "message": "all done"
    }]});
    let session = h
        .ok(
            "POST",
            "/v1/emulator/sessions",
            ADMIN,
            Some(json!({"agent": agent, "environment_id": env, "scenario": scenario})),
        )
        .await;
    let sid = session["id"].as_str().unwrap();
    assert_eq!(
        session["agent"]["tools"][0]["type"],
        "agent_toolset_20260401"
    );
    h.ok("POST", &format!("/v1/sessions/{sid}/events"), ADMIN, Some(json!({"events": [{"type": "user.message", "content": [{"type": "text", "text": "go"}]}]}))).await;
    let log = events(&h, sid).await;
    let types: Vec<&str> = log.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "user.message",
            "session.status_running",
            "agent.tool_use",
            "session.status_idle"
        ]
    );
    let call = log[2]["id"].as_str().unwrap().to_string();
    assert_eq!(
        log[3]["stop_reason"],
        json!({"type": "requires_action", "event_ids": [call]})
    );
    assert_eq!(
        h.ok("GET", &format!("/v1/sessions/{sid}"), ADMIN, None)
            .await["status"],
        "idle"
    );

    let item = h.poll(&env, &key).await;
    let token = sessions_token(&item);
    let result = json!({"events": [{"type": "user.tool_result", "tool_use_id": call, "is_error": false, "content": [{"type": "text", "text": "hi\n"}]}]});
    let stored = h
        .ok(
            "POST",
            &format!("/v1/sessions/{sid}/events"),
            &token,
            Some(result.clone()),
        )
        .await;
    assert!(stored["data"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("sevt_"));
    assert!(stored["data"][0]["processed_at"].is_string());
    // Answering twice, an unknown id, or the wrong kind → 400.
    assert_eq!(
        h.call(
            "POST",
            &format!("/v1/sessions/{sid}/events"),
            &token,
            Some(result)
        )
        .await
        .0,
        400
    );
    let unknown = json!({"events": [{"type": "user.tool_result", "tool_use_id": "sevt_nope", "content": []}]});
    assert_eq!(
        h.call(
            "POST",
            &format!("/v1/sessions/{sid}/events"),
            &token,
            Some(unknown)
        )
        .await
        .0,
        400
    );

    let log = events(&h, sid).await;
    let calls: Vec<&Value> = log
        .iter()
        .filter(|e| e["type"].as_str().unwrap().ends_with("tool_use"))
        .collect();
    assert_eq!(calls.len(), 3);
    let (read, custom) = (
        calls[1]["id"].as_str().unwrap(),
        calls[2]["id"].as_str().unwrap(),
    );
    assert_eq!(calls[2]["type"], "agent.custom_tool_use");
    let wrong_kind =
        json!({"events": [{"type": "user.tool_result", "tool_use_id": custom, "content": []}]});
    let (status, body) = h
        .call(
            "POST",
            &format!("/v1/sessions/{sid}/events"),
            &token,
            Some(wrong_kind),
        )
        .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    h.ok("POST", &format!("/v1/sessions/{sid}/events"), &token, Some(json!({"events": [{"type": "user.tool_result", "tool_use_id": read, "is_error": false, "content": [{"type": "text", "text": "wrong"}]}]}))).await;
    h.ok("POST", &format!("/v1/sessions/{sid}/events"), ADMIN, Some(json!({"events": [{"type": "user.custom_tool_result", "custom_tool_use_id": custom, "is_error": false, "content": [{"type": "text", "text": "ok"}]}]}))).await;

    let log = events(&h, sid).await;
    let last = &log[log.len() - 1];
    assert_eq!(last["stop_reason"]["type"], "end_turn");
    assert_eq!(log[log.len() - 2]["content"][0]["text"], "all done");
    let report = h
        .ok(
            "GET",
            &format!("/v1/emulator/sessions/{sid}/scenario"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(report["complete"], true);
    assert_eq!(report["passed"], false, "the read expectation was violated");
    assert_eq!(report["failures"].as_array().unwrap().len(), 1, "{report}");
}

#[tokio::test]
async fn sse_streams_live_events_pings_and_can_be_dropped() {
    let config = EmulatorConfig {
        ping_interval: Duration::from_millis(100),
        ..EmulatorConfig::default()
    };
    let h = start(config).await;
    let (env, key, agent) = h.setup().await;
    let sid = h.session(&env, &agent).await;
    h.ok(
        "POST",
        &format!("/v1/emulator/sessions/{sid}/events"),
        ADMIN,
        Some(json!({"events": [{"type": "agent.message", "content": []}]})),
    )
    .await;
    let response = h
        .http
        .get(format!("{}/v1/sessions/{sid}/events/stream", h.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.bytes_stream();
    h.ok("POST", &format!("/v1/emulator/sessions/{sid}/events"), ADMIN, Some(json!({"events": [{"type": "agent.tool_use", "name": "bash", "input": {"command": "ls"}}]}))).await;
    let mut text = String::new();
    while !(text.contains("event: agent.tool_use") && text.contains("event: ping")) {
        let chunk = tokio::time::timeout(Duration::from_secs(2), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !text.contains("agent.message"),
        "history is not replayed: {text}"
    );
    assert!(
        text.contains("data: {\"type\":\"agent.tool_use\""),
        "{text}"
    );
    h.emulator.inject_faults(Faults {
        drop_streams_now: true,
        ..Faults::default()
    });
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ends after a drop fault");
}

#[tokio::test]
async fn events_paginate_and_sessions_validate() {
    let h = start(EmulatorConfig::default()).await;
    let (env, _, agent) = h.setup().await;
    let sid = h.session(&env, &agent).await;
    let batch: Vec<Value> = (0..5).map(|i| json!({"type": "agent.message", "content": [{"type": "text", "text": i.to_string()}]})).collect();
    h.ok(
        "POST",
        &format!("/v1/emulator/sessions/{sid}/events"),
        ADMIN,
        Some(json!({"events": batch})),
    )
    .await;
    let mut seen = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let cursor = page.map(|p| format!("&page={p}")).unwrap_or_default();
        let body = h
            .ok(
                "GET",
                &format!("/v1/sessions/{sid}/events?limit=2{cursor}"),
                ADMIN,
                None,
            )
            .await;
        seen.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["content"][0]["text"].as_str().unwrap().to_string()),
        );
        page = body["next_page"].as_str().map(str::to_string);
        if page.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["0", "1", "2", "3", "4"]);
    let desc = h
        .ok(
            "GET",
            &format!("/v1/sessions/{sid}/events?limit=1&order=desc"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(desc["data"][0]["content"][0]["text"], "4");

    let (status, body) = h.call("POST", "/v1/sessions", ADMIN, Some(json!({"agent": agent, "environment_id": env, "resources": [{"type": "file", "file_id": "f"}]}))).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        format!("Environment {env} is a self-hosted environment. `resources` are not supported with self-hosted environments.")
    );
    let r = h
        .http
        .post(format!("{}/v1/sessions/{sid}/events", h.base))
        .bearer_auth(ADMIN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let deleted = h
        .ok("DELETE", &format!("/v1/sessions/{sid}"), ADMIN, None)
        .await;
    assert_eq!(deleted["type"], "session_deleted");
    assert_eq!(
        h.ok("GET", &format!("/v1/sessions/{sid}"), ADMIN, None)
            .await["status"],
        "terminated"
    );
}

#[tokio::test]
async fn skills_resolve_latest_and_download() {
    let h = start(EmulatorConfig::default()).await;
    let (env, key, _) = h.setup().await;
    let v1 = h
        .ok(
            "POST",
            "/v1/emulator/skills",
            ADMIN,
            Some(json!({"name": "pdf", "files": {"SKILL.md": "v1"}})),
        )
        .await;
    let skill = v1["skill_id"].as_str().unwrap();
    let v2 = h
        .ok(
            "POST",
            "/v1/emulator/skills",
            ADMIN,
            Some(json!({"name": "pdf", "skill_id": skill, "files": {"SKILL.md": "v2"}})),
        )
        .await;
    assert!(v2["id"].as_str().unwrap().starts_with("skillver_"));
    let agent = h.ok("POST", "/v1/agents", ADMIN, Some(json!({"name": "s", "model": "m", "skills": [{"type": "custom", "skill_id": skill}]}))).await;
    assert_eq!(
        h.call(
            "GET",
            &format!("/v1/skills/{skill}/versions/latest"),
            &key,
            None
        )
        .await
        .0,
        403,
        "no session in env uses it yet"
    );
    h.session(&env, agent["id"].as_str().unwrap()).await;
    let token = sessions_token(&h.poll(&env, &key).await);
    let latest = h
        .ok(
            "GET",
            &format!("/v1/skills/{skill}/versions/latest"),
            &token,
            None,
        )
        .await;
    assert_eq!(latest["id"], v2["id"]);
    assert_eq!(latest["name"], "pdf");
    let content = h
        .http
        .get(format!(
            "{}/v1/skills/{skill}/versions/{}/content",
            h.base,
            latest["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(content.headers()["content-type"], "application/zip");
    let bytes = content.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK");
}

#[tokio::test]
async fn ask_gated_call_denied_by_confirmation_resolves_the_step() {
    let h = start(EmulatorConfig::default()).await;
    let (env, _, agent) = h.setup().await;
    let scenario = json!({"turns": [{"calls": [{"name": "bash", "input": {"command": "rm -rf /"}, "permission": "ask", "expect": {"denied": true}}]}], "terminate_after": true});
    let session = h
        .ok(
            "POST",
            "/v1/emulator/sessions",
            ADMIN,
            Some(json!({"agent": agent, "environment_id": env, "scenario": scenario})),
        )
        .await;
    let sid = session["id"].as_str().unwrap();
    h.ok(
        "POST",
        &format!("/v1/sessions/{sid}/events"),
        ADMIN,
        Some(json!({"events": [{"type": "user.message", "content": "go"}]})),
    )
    .await;
    let log = events(&h, sid).await;
    let call = log.iter().find(|e| e["type"] == "agent.tool_use").unwrap();
    assert_eq!(call["evaluated_permission"], "ask");
    let deny = json!({"events": [{"type": "user.tool_confirmation", "tool_use_id": call["id"], "result": "deny", "deny_message": "no"}]});
    h.ok(
        "POST",
        &format!("/v1/sessions/{sid}/events"),
        ADMIN,
        Some(deny),
    )
    .await;
    let report = h
        .ok(
            "GET",
            &format!("/v1/emulator/sessions/{sid}/scenario"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(
        h.ok("GET", &format!("/v1/sessions/{sid}"), ADMIN, None)
            .await["status"],
        "terminated"
    );
    let late =
        json!({"events": [{"type": "user.tool_result", "tool_use_id": call["id"], "content": []}]});
    assert_eq!(
        h.call(
            "POST",
            &format!("/v1/sessions/{sid}/events"),
            ADMIN,
            Some(late)
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn streams_end_after_k_events_when_armed() {
    let h = start(EmulatorConfig::default()).await;
    let (env, key, agent) = h.setup().await;
    let sid = h.session(&env, &agent).await;
    h.ok(
        "POST",
        "/v1/emulator/faults",
        ADMIN,
        Some(json!({"drop_streams_after_events": 2})),
    )
    .await;
    let response = h
        .http
        .get(format!("{}/v1/sessions/{sid}/events/stream", h.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let batch: Vec<Value> = (0..4)
        .map(|_| json!({"type": "agent.message", "content": []}))
        .collect();
    h.ok(
        "POST",
        &format!("/v1/emulator/sessions/{sid}/events"),
        ADMIN,
        Some(json!({"events": batch})),
    )
    .await;
    let text = tokio::time::timeout(Duration::from_secs(2), response.text())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text.matches("event: agent.message").count(), 2, "{text}");
}
