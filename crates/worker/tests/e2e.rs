//! End-to-end: the worker against the control-plane emulator on loopback, with
//! the in-process (`none`) tool host.

mod common;

use common::{eventually, start, start_with};
use sandkeep_emulator::EmulatorConfig;
use sandkeep_emulator::Faults;
use sandkeep_worker::{run_item, run_poll, ClaimedItem};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn poll_to_end(config: sandkeep_worker::WorkerConfig) -> anyhow::Result<()> {
    tokio::time::timeout(
        Duration::from_secs(60),
        run_poll(config, CancellationToken::new()),
    )
    .await
    .expect("run_poll did not return within 60 s")
}

fn state_of(items: &[Value], session: &str) -> String {
    let item = items
        .iter()
        .find(|w| w["data"]["id"] == session)
        .expect("work item for the session");
    item["state"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_a_session_with_skills_then_stops_it() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let files = json!({"SKILL.md": "# PDF skill", "scripts/run.sh": "#!/bin/sh\necho ran"});
    let skill = h
        .ok(
            "POST",
            "/v1/emulator/skills",
            Some(json!({"name": "pdf", "files": files})),
        )
        .await;
    let agent = h
        .agent(json!([{"type": "custom", "skill_id": skill["skill_id"], "version": "latest"}]))
        .await;
    let scenario = json!({"turns": [{"calls": [
        {"name": "bash", "input": {"command": "cat skills/pdf/SKILL.md; ls -l skills/pdf/scripts/run.sh"},
         "expect": {"is_error": false, "contains": ["# PDF skill", "-rwxr-xr-x"]}},
        {"name": "write", "input": {"file_path": "out.txt", "content": "hello"}, "expect": {"is_error": false}},
        {"name": "read", "input": {"file_path": "out.txt"}, "expect": {"contains": ["hello"]}}
    ]}], "terminate_after": true});
    let sid = h.session(&env, &agent, scenario).await;
    let workdir = tempfile::tempdir().unwrap();
    poll_to_end(h.config(&env, &key, workdir.path()))
        .await
        .unwrap();

    let report = h.scenario(&sid).await;
    assert_eq!(report["passed"], json!(true), "{report}");
    assert_eq!(state_of(&h.work_items(&env, &key).await, &sid), "stopped");
    assert!(
        !workdir.path().join("sessions").join(&sid).exists(),
        "session workspace removed"
    );
    let results: Vec<Value> = h
        .events(&sid)
        .await
        .into_iter()
        .filter(|e| e["type"] == "user.tool_result")
        .collect();
    assert_eq!(results.len(), 3, "one result per call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idles_out_and_keeps_the_workspace_when_asked() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    let scenario =
        json!({"turns": [{"calls": [{"name": "bash", "input": {"command": "echo hi > f.txt"}}]}]});
    let sid = h.session(&env, &agent, scenario).await;
    let workdir = tempfile::tempdir().unwrap();
    let config = sandkeep_worker::WorkerConfig {
        keep_workspace: true,
        ..h.config(&env, &key, workdir.path())
    };
    let started = std::time::Instant::now();
    poll_to_end(config).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(h.scenario(&sid).await["passed"], json!(true));
    assert_eq!(state_of(&h.work_items(&env, &key).await, &sid), "stopped");
    let kept = workdir.path().join("sessions").join(&sid).join("f.txt");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "hi\n");
    assert!(
        !workdir
            .path()
            .join("sessions")
            .join(&sid)
            .join("skills")
            .exists(),
        "no skills, no skills dir"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_session_items_are_only_force_stopped() {
    let h = start().await;
    let (env, key) = h.environment().await;
    h.ok(
        "POST",
        &format!("/v1/emulator/environments/{env}/work"),
        Some(json!({"data": {"type": "healthcheck"}})),
    )
    .await;
    let workdir = tempfile::tempdir().unwrap();
    poll_to_end(h.config(&env, &key, workdir.path()))
        .await
        .unwrap();
    let items = h.work_items(&env, &key).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["state"], "stopped");
    assert!(
        items[0]["latest_heartbeat_at"].is_null(),
        "no heartbeat for a non-session item"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_environment_key_fails_with_a_hint() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let workdir = tempfile::tempdir().unwrap();
    let err = poll_to_end(h.config(&env, "sk-wrong", workdir.path()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("401") && err.contains("environment key"),
        "{err}"
    );
    let err = poll_to_end(h.config("env_missing", &key, workdir.path()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("rejected"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_then_cancels_in_flight_sessions() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    // A custom call nobody answers keeps the runner alive indefinitely.
    let scenario = json!({"turns": [{"calls": [{"name": "lookup", "kind": "custom"}]}]});
    let sid = h.session(&env, &agent, scenario).await;
    let workdir = tempfile::tempdir().unwrap();
    let config = sandkeep_worker::WorkerConfig {
        drain: false,
        max_idle: None,
        drain_timeout: Duration::from_millis(500),
        ..h.config(&env, &key, workdir.path())
    };
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(run_poll(config, shutdown.clone()));
    let session_dir = workdir.path().join("sessions").join(&sid);
    assert!(
        eventually(10, || session_dir.exists()).await,
        "the session started"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    let finished = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("drained in time");
    finished.unwrap().unwrap();
    assert_eq!(state_of(&h.work_items(&env, &key).await, &sid), "stopped");
    // The session was not terminated, only this worker's item: its files stay for
    // the session's next work item.
    assert!(session_dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_is_released_without_stopping() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    let sid = h
        .session(
            &env,
            &agent,
            json!({"turns": [{"calls": [{"name": "lookup", "kind": "custom"}]}]}),
        )
        .await;
    let work_id = h.work_items(&env, &key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.emulator.inject_faults(Faults {
        reject_heartbeats: vec![work_id],
        ..Faults::default()
    });
    let workdir = tempfile::tempdir().unwrap();
    let config = sandkeep_worker::WorkerConfig {
        max_idle: None,
        ..h.config(&env, &key, workdir.path())
    };
    poll_to_end(config).await.unwrap();
    assert_ne!(state_of(&h.work_items(&env, &key).await, &sid), "stopped");
    h.emulator.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_item_works_with_only_a_work_secret() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    let scenario = json!({"turns": [{"calls": [{"name": "bash", "input": {"command": "echo ok"}, "expect": {"contains": ["ok"]}}]}], "terminate_after": true});
    let sid = h.session(&env, &agent, scenario).await;
    let http = reqwest::Client::new();
    let item: Value = http
        .get(format!(
            "{}/v1/environments/{env}/work/poll?block_ms=500",
            h.base
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let work_id = item["id"].as_str().unwrap().to_string();
    let ack = http
        .post(format!(
            "{}/v1/environments/{env}/work/{work_id}/ack",
            h.base
        ))
        .bearer_auth(&key)
        .send()
        .await;
    assert!(ack.unwrap().status().is_success());
    let workdir = tempfile::tempdir().unwrap();
    let config = sandkeep_worker::WorkerConfig {
        environment_key: None,
        ..h.config(&env, &key, workdir.path())
    };
    let claimed = ClaimedItem {
        work_id: work_id.clone(),
        environment_id: env.clone(),
        session_id: sid.clone(),
        secret: item["secret"].as_str().map(str::to_string),
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        run_item(config.clone(), claimed.clone(), CancellationToken::new()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(h.scenario(&sid).await["passed"], json!(true));
    assert_eq!(state_of(&h.work_items(&env, &key).await, &sid), "stopped");

    let no_credential = ClaimedItem {
        secret: None,
        ..claimed
    };
    let err = run_item(config, no_credential, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, sandkeep_worker::item::no_credential_message(&work_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_stop_seen_on_heartbeat_ends_the_session() {
    // TTL 2 s → heartbeat every 1 s.
    let h = start_with(EmulatorConfig {
        lease_ttl_seconds: 2,
        ..EmulatorConfig::default()
    })
    .await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    let sid = h
        .session(
            &env,
            &agent,
            json!({"turns": [{"calls": [{"name": "lookup", "kind": "custom"}]}]}),
        )
        .await;
    let work_id = h.work_items(&env, &key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let workdir = tempfile::tempdir().unwrap();
    let config = sandkeep_worker::WorkerConfig {
        max_idle: None,
        ..h.config(&env, &key, workdir.path())
    };
    let worker = tokio::spawn(poll_to_end(config));
    let session_dir = workdir.path().join("sessions").join(&sid);
    assert!(
        eventually(10, || session_dir.exists()).await,
        "the session started"
    );
    h.ok(
        "POST",
        &format!("/v1/environments/{env}/work/{work_id}/stop"),
        Some(json!({})),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("stopped within a few heartbeats")
        .unwrap()
        .unwrap();
    assert_eq!(
        state_of(&h.work_items(&env, &key).await, &sid),
        "stopped",
        "confirmed with a force-stop"
    );
}
