//! End-to-end failure handling of `sandkeep worker poll`: lost leases, 5xx and
//! slow responses, dropped event streams, a crashed worker and SIGTERM drain,
//! all injected through the emulator's fault endpoints or real signals.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn bash(command: &str, contains: &str) -> serde_json::Value {
    call(
        "bash",
        json!({"command": command}),
        json!({"is_error": false, "contains": [contains]}),
    )
}

#[tokio::test]
async fn lost_lease_is_released_without_stop_and_polling_goes_on() {
    // TTL 4 s → heartbeats every 2 s, so a rejected heartbeat shows up quickly.
    let emulator = Emulator::start_with(&["--lease-ttl", "4"]);
    let setup = emulator.setup().await;
    // The custom call is never answered by the worker, which keeps the session open.
    let steps = vec![
        vec![bash("echo first", "first")],
        vec![json!({"name": "hold", "kind": "custom", "input": {}})],
    ];
    let sid = emulator
        .scenario_session(&setup, &setup.agent_id, one_turn(steps))
        .await;
    let dir = workdir();
    let worker = Worker::spawn(
        "lease",
        &WorkerArgs::poll(&emulator.base_url, &setup, dir.path()),
    );

    let custom_id = wait_for(
        "the custom call of step 2",
        Duration::from_secs(15),
        || async {
            let events = emulator.events(&sid).await;
            events
                .iter()
                .find(|e| e["type"] == "agent.custom_tool_use")
                .and_then(|e| e["id"].as_str().map(str::to_string))
        },
    )
    .await;
    let item = emulator
        .wait_work(&setup, &sid, "heartbeating", Duration::from_secs(10), |w| {
            w["latest_heartbeat_at"].is_string()
        })
        .await;
    let work_id = item["id"].as_str().unwrap().to_string();
    emulator
        .arm_faults(json!({"reject_heartbeats": [work_id]}))
        .await;
    worker.wait_log("lease lost", Duration::from_secs(10)).await;

    // Give a wrong stop time to arrive, then check none did.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let item = emulator.work_for_session(&setup, &sid).await.unwrap();
    assert_ne!(
        item["state"], "stopped",
        "the worker stopped an item whose lease it lost: {item:#}"
    );
    assert!(
        item["stop_requested_at"].is_null() && item["stopped_at"].is_null(),
        "{item:#}"
    );
    assert!(
        !worker.logs_text().contains("work item stopped"),
        "{}",
        worker.logs_text()
    );

    // Once the lease expires the item is re-queued; the same process claims it again.
    emulator.clear_faults().await;
    wait_for(
        "the worker to claim the item a second time",
        Duration::from_secs(20),
        || async {
            let claims = worker
                .logs()
                .iter()
                .filter(|l| l.contains("claimed work item"))
                .count();
            (claims >= 2).then_some(())
        },
    )
    .await;
    emulator
        .send_event(
            &sid,
            json!({"type": "user.custom_tool_result", "custom_tool_use_id": custom_id,
                                 "content": [{"type": "text", "text": "held"}]}),
        )
        .await;
    emulator
        .wait_scenario_passed(&sid, Duration::from_secs(10))
        .await;
    emulator
        .wait_stopped(&setup, &sid, Duration::from_secs(10))
        .await;
    // The reclaim must not execute the already-answered bash call again.
    assert_each_call_answered_once(&emulator.events(&sid).await);
}

#[tokio::test]
async fn server_errors_and_slow_responses_are_retried() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let steps = vec![
        vec![call(
            "write",
            json!({"file_path": "x.txt", "content": "xyz"}),
            json!({"is_error": false}),
        )],
        vec![bash("cat x.txt", "xyz")],
        vec![call(
            "read",
            json!({"file_path": "x.txt"}),
            json!({"equals": "xyz"}),
        )],
    ];
    let sid = emulator
        .scenario_session(&setup, &setup.agent_id, one_turn(steps))
        .await;
    let env = &setup.env_id;
    emulator
        .arm_faults(json!({
            "fail": [
                {"method": "GET", "path_prefix": format!("/v1/environments/{env}/work/poll"), "status": 503, "count": 2},
                {"method": "POST", "path_prefix": format!("/v1/sessions/{sid}/events"), "status": 503, "count": 2},
            ],
            "delay": [
                {"method": "GET", "path_prefix": format!("/v1/sessions/{sid}/events"), "delay_ms": 1500, "count": 1},
                {"method": "POST", "path_prefix": format!("/v1/environments/{env}/work/"), "delay_ms": 1000, "count": 1},
            ],
        }))
        .await;
    let dir = workdir();
    let _worker = Worker::spawn(
        "5xx",
        &WorkerArgs::poll(&emulator.base_url, &setup, dir.path()),
    );

    emulator
        .wait_scenario_passed(&sid, Duration::from_secs(30))
        .await;
    emulator
        .wait_stopped(&setup, &sid, Duration::from_secs(10))
        .await;
    let events = emulator.events(&sid).await;
    assert_eq!(tool_use_ids(&events).len(), 3);
    assert_each_call_answered_once(&events);
    // Rules are consumed per matching request: if the worker had not run into all
    // of them, our own requests would get the leftover 503s now.
    let poll = format!("/v1/environments/{env}/work/poll?block_ms=1");
    let (status, _) = emulator
        .call(reqwest::Method::GET, &poll, &setup.env_key, None)
        .await;
    assert_eq!(
        status, 200,
        "the worker never hit the injected poll failures"
    );
    let message =
        json!({"events": [{"type": "user.message", "content": [{"type": "text", "text": "x"}]}]});
    let (status, _) = emulator
        .call(
            reqwest::Method::POST,
            &format!("/v1/sessions/{sid}/events"),
            ADMIN_KEY,
            Some(&message),
        )
        .await;
    assert_eq!(
        status, 200,
        "the worker never hit the injected result-post failures"
    );
}

#[tokio::test]
async fn dropped_event_streams_lose_and_duplicate_nothing() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let steps: Vec<_> = (1..=4)
        .map(|n| vec![bash(&format!("echo step-{n}"), &format!("step-{n}"))])
        .collect();
    let sid = emulator
        .scenario_session(&setup, &setup.agent_id, one_turn(steps))
        .await;
    emulator
        .arm_faults(json!({"drop_streams_after_events": 2}))
        .await;
    let dir = workdir();
    let _worker = Worker::spawn(
        "sse",
        &WorkerArgs::poll(&emulator.base_url, &setup, dir.path()),
    );

    wait_for("step 2 to be answered", Duration::from_secs(20), || async {
        let events = emulator.events(&sid).await;
        (tool_use_ids(&events).len() >= 2).then_some(())
    })
    .await;
    emulator.arm_faults(json!({"drop_streams_now": true})).await;
    emulator
        .wait_scenario_passed(&sid, Duration::from_secs(30))
        .await;
    emulator
        .wait_stopped(&setup, &sid, Duration::from_secs(15))
        .await;
    let events = emulator.events(&sid).await;
    assert_eq!(tool_use_ids(&events).len(), 4);
    assert_each_call_answered_once(&events);
}

#[tokio::test]
async fn a_killed_workers_session_is_finished_by_another_worker() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let steps = vec![
        vec![bash("touch started; sleep 3; echo slept", "slept")],
        vec![bash("echo after", "after")],
    ];
    let sid = emulator
        .scenario_session(&setup, &setup.agent_id, one_turn(steps))
        .await;
    let dir_a = workdir();
    let mut worker_a = Worker::spawn(
        "A",
        &WorkerArgs::poll(&emulator.base_url, &setup, dir_a.path()),
    );
    let marker = dir_a.path().join("sessions").join(&sid).join("started");
    wait_for(
        "worker A to start the slow call",
        Duration::from_secs(15),
        || async { marker.exists().then_some(()) },
    )
    .await;
    worker_a.kill();

    let item = emulator.work_for_session(&setup, &sid).await.unwrap();
    let work_id = item["id"].as_str().unwrap();
    let expired = emulator
        .arm_faults(json!({"expire_leases": [work_id]}))
        .await;
    assert!(
        expired.to_string().contains(work_id),
        "the item was not held when A died: {expired}"
    );
    let dir_b = workdir();
    let worker_b = Worker::spawn(
        "B",
        &WorkerArgs::poll(&emulator.base_url, &setup, dir_b.path()),
    );

    let state = emulator
        .wait_scenario_passed(&sid, Duration::from_secs(25))
        .await;
    assert_eq!(state["results"][0]["output"], "slept");
    emulator
        .wait_stopped(&setup, &sid, Duration::from_secs(10))
        .await;
    assert_each_call_answered_once(&emulator.events(&sid).await);
    worker_b
        .wait_log("claimed work item", Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn sigterm_drains_the_in_flight_call_then_exits_zero() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let steps = vec![vec![bash(
        "touch started; sleep 2; echo finished",
        "finished",
    )]];
    let sid = emulator
        .scenario_session(&setup, &setup.agent_id, one_turn(steps))
        .await;
    let dir = workdir();
    // A long idle grace: the session would stay open, so only the drain ends it.
    let spec = WorkerArgs::poll(&emulator.base_url, &setup, dir.path())
        .set("--max-idle", "60s")
        .set("--drain-timeout", "4s");
    let mut worker = Worker::spawn("drain", &spec);
    let marker = dir.path().join("sessions").join(&sid).join("started");
    wait_for(
        "the slow call to start",
        Duration::from_secs(15),
        || async { marker.exists().then_some(()) },
    )
    .await;

    let signalled = Instant::now();
    worker.terminate();
    let status = worker.wait_exit(Duration::from_secs(10)).await;
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        worker.logs_text()
    );
    assert!(
        took < Duration::from_secs(6),
        "exit took {took:?} with --drain-timeout 4s"
    );

    let state = emulator
        .wait_scenario_passed(&sid, Duration::from_secs(2))
        .await;
    assert_eq!(state["results"][0]["output"], "finished");
    let item = emulator.work_for_session(&setup, &sid).await.unwrap();
    assert_eq!(
        item["state"], "stopped",
        "the drained item was not force-stopped: {item:#}"
    );
    assert_each_call_answered_once(&emulator.events(&sid).await);
}
