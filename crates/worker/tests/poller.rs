//! Poll-loop behaviour against the emulator (protocol.md §12.1 cases 6, 11, 12,
//! §12.3 case 52) and sandkeep's concurrency.

mod common;

use common::{start, start_with};
use sandkeep_emulator::{EmulatorConfig, FailRule, Faults};
use sandkeep_worker::run_poll;
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn fail(method: &str, path_prefix: String, status: u16) -> FailRule {
    serde_json::from_value(
        json!({"method": method, "path_prefix": path_prefix, "status": status, "count": 1}),
    )
    .unwrap()
}

async fn poll_to_end(config: sandkeep_worker::WorkerConfig) {
    tokio::time::timeout(
        Duration::from_secs(60),
        run_poll(config, CancellationToken::new()),
    )
    .await
    .expect("run_poll returned in time")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_6_transient_poll_failure_is_retried() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    let sid = h
        .session(&env, &agent, json!({"turns": [], "terminate_after": true}))
        .await;
    h.emulator.inject_faults(Faults {
        fail: vec![fail(
            "GET",
            format!("/v1/environments/{env}/work/poll"),
            500,
        )],
        ..Faults::default()
    });
    let workdir = tempfile::tempdir().unwrap();
    let config = sandkeep_worker::WorkerConfig {
        client: sandkeep_api::ClientConfig {
            base_url: h.base.clone(),
            max_retries: 0,
            ..Default::default()
        },
        ..h.config(&env, &key, workdir.path())
    };
    let started = std::time::Instant::now();
    poll_to_end(config).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "backed off min(60, 2^1) s"
    );
    let items = h.work_items(&env, &key).await;
    assert_eq!(items[0]["data"]["id"], sid.as_str());
    assert_eq!(items[0]["state"], "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_11_fatal_ack_force_stops_without_running() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    h.session(&env, &agent, json!({"turns": []})).await;
    let work_id = h.work_items(&env, &key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ack = fail(
        "POST",
        format!("/v1/environments/{env}/work/{work_id}/ack"),
        403,
    );
    h.emulator.inject_faults(Faults {
        fail: vec![ack],
        ..Faults::default()
    });
    let workdir = tempfile::tempdir().unwrap();
    poll_to_end(h.config(&env, &key, workdir.path())).await;
    let items = h.work_items(&env, &key).await;
    assert_eq!(items[0]["state"], "stopped");
    assert!(
        items[0]["latest_heartbeat_at"].is_null(),
        "the item was never run"
    );
    assert!(!workdir.path().join("sessions").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_12_transient_ack_failure_leaves_the_item_for_reclaim() {
    let h = start_with(EmulatorConfig {
        reclaim_default_ms: 200,
        ..EmulatorConfig::default()
    })
    .await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    h.session(&env, &agent, json!({"turns": [], "terminate_after": true}))
        .await;
    let work_id = h.work_items(&env, &key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ack = fail(
        "POST",
        format!("/v1/environments/{env}/work/{work_id}/ack"),
        503,
    );
    h.emulator.inject_faults(Faults {
        fail: vec![ack],
        ..Faults::default()
    });
    let workdir = tempfile::tempdir().unwrap();
    let config = sandkeep_worker::WorkerConfig {
        client: sandkeep_api::ClientConfig {
            base_url: h.base.clone(),
            max_retries: 0,
            ..Default::default()
        },
        ..h.config(&env, &key, workdir.path())
    };
    poll_to_end(config).await;
    // Not stopped after the failed ack: it was reclaimed, claimed again and served.
    let items = h.work_items(&env, &key).await;
    assert_eq!(items[0]["state"], "stopped");
    assert!(
        !items[0]["latest_heartbeat_at"].is_null(),
        "served after the reclaim"
    );
}

/// Two sessions whose bash call records start/end times in `marks`.
async fn two_sleepy_sessions(max_sessions: usize) -> (Vec<f64>, Vec<f64>) {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    let marks = tempfile::tempdir().unwrap();
    let m = marks.path().display();
    let command = format!("date +%s.%N >> {m}/starts; sleep 1; date +%s.%N >> {m}/ends");
    let scenario = json!({"turns": [{"calls": [{"name": "bash", "input": {"command": command}}]}], "terminate_after": true});
    let a = h.session(&env, &agent, scenario.clone()).await;
    let b = h.session(&env, &agent, scenario).await;
    let workdir = tempfile::tempdir().unwrap();
    poll_to_end(sandkeep_worker::WorkerConfig {
        max_sessions,
        ..h.config(&env, &key, workdir.path())
    })
    .await;
    for sid in [a, b] {
        assert_eq!(h.scenario(&sid).await["passed"], json!(true));
    }
    let read = |name: &str| -> Vec<f64> {
        let text = std::fs::read_to_string(marks.path().join(name)).unwrap();
        text.lines().map(|l| l.parse().unwrap()).collect()
    };
    (read("starts"), read("ends"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_concurrently_up_to_max_sessions() {
    let (starts, ends) = two_sleepy_sessions(2).await;
    let last_start = starts.iter().cloned().fold(f64::MIN, f64::max);
    let first_end = ends.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        last_start < first_end,
        "the two calls overlapped: starts {starts:?} ends {ends:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_52_one_slot_means_strictly_sequential() {
    let (starts, ends) = two_sleepy_sessions(1).await;
    let last_start = starts.iter().cloned().fold(f64::MIN, f64::max);
    let first_end = ends.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        last_start >= first_end,
        "no overlap: starts {starts:?} ends {ends:?}"
    );
}
