//! Many sessions at once on one `sandkeep worker poll` process.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const SESSIONS: usize = 50;

#[tokio::test]
async fn fifty_concurrent_sessions_on_one_worker() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let mut sessions = Vec::with_capacity(SESSIONS);
    for n in 0..SESSIONS {
        let steps = vec![
            vec![call(
                "write",
                json!({"file_path": "n.txt", "content": format!("session-{n}")}),
                json!({"is_error": false}),
            )],
            vec![call(
                "bash",
                json!({"command": "cat n.txt"}),
                json!({"equals": format!("session-{n}")}),
            )],
        ];
        sessions.push(
            emulator
                .scenario_session(&setup, &setup.agent_id, one_turn_then_terminate(steps))
                .await,
        );
    }
    let dir = workdir();
    let spec =
        WorkerArgs::poll(&emulator.base_url, &setup, dir.path()).arg(&["--max-sessions", "50"]);
    let worker = Worker::spawn("fifty", &spec);

    let started = Instant::now();
    let limit = Duration::from_secs(60);
    for sid in &sessions {
        let left = limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        emulator.wait_scenario_passed(sid, left).await;
    }
    let passed_after = started.elapsed();
    for sid in &sessions {
        let left = limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        emulator.wait_stopped(&setup, sid, left).await;
    }
    println!(
        "{SESSIONS} sessions on one worker: all scenarios passed after {passed_after:?}, all items stopped after {:?}",
        started.elapsed()
    );
    // Each session had its own directory, removed once the session was terminated.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sessions"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "session directories left behind: {leftovers:?}"
    );
    let claims = worker
        .logs()
        .iter()
        .filter(|l| l.contains("claimed work item"))
        .count();
    assert_eq!(claims, SESSIONS, "{}", worker.logs_text());
}
