//! `--on-work` scripts (protocol.md §10.4) against the emulator.

mod common;

use common::start;
use sandkeep_worker::run_poll;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_gets_env_and_item_then_the_item_is_stopped() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    let sid = h.session(&env, &agent, json!({"turns": []})).await;
    h.ok(
        "POST",
        &format!("/v1/emulator/environments/{env}/work"),
        Some(json!({"data": {"type": "healthcheck"}})),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let script = dir.path().join("on-work.sh");
    let body = format!(
        "#!/bin/sh\nenv | grep '^ANTHROPIC_' | sort > '{0}/env-'\"$ANTHROPIC_WORK_ID\"\ncat > '{0}/stdin-'\"$ANTHROPIC_WORK_ID\"\necho script says hi\n",
        out.display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = sandkeep_worker::WorkerConfig {
        on_work: Some(script),
        ..h.config(&env, &key, dir.path())
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        run_poll(config, CancellationToken::new()),
    )
    .await
    .unwrap()
    .unwrap();

    let items = h.work_items(&env, &key).await;
    let session_item = items
        .iter()
        .find(|w| w["data"]["id"] == sid.as_str())
        .unwrap();
    let work_id = session_item["id"].as_str().unwrap();
    // The plain stop moves the item to `stopping`; the script did not confirm it.
    assert_eq!(session_item["state"], "stopping");
    let env_lines = std::fs::read_to_string(out.join(format!("env-{work_id}"))).unwrap();
    assert!(
        env_lines.contains(&format!("ANTHROPIC_WORK_ID={work_id}\n")),
        "{env_lines}"
    );
    assert!(env_lines.contains(&format!("ANTHROPIC_SESSION_ID={sid}\n")));
    assert!(env_lines.contains(&format!("ANTHROPIC_ENVIRONMENT_ID={env}\n")));
    assert!(env_lines.contains(&format!("ANTHROPIC_ENVIRONMENT_KEY={key}\n")));
    assert!(env_lines.contains(&format!("ANTHROPIC_BASE_URL={}\n", h.base)));
    assert!(!env_lines.contains("ANTHROPIC_WORK_SECRET"));
    let stdin: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("stdin-{work_id}"))).unwrap(),
    )
    .unwrap();
    assert_eq!(stdin["id"], work_id);
    assert!(
        stdin["secret"].as_str().is_some_and(|s| !s.is_empty()),
        "the secret rides on stdin"
    );

    // The health check never reached the script but was stopped.
    let health = items
        .iter()
        .find(|w| w["data"]["type"] == "healthcheck")
        .unwrap();
    assert_eq!(health["state"], "stopping");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrunnable_script_is_fatal() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    h.session(&env, &agent, json!({"turns": []})).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sh");
    let config = sandkeep_worker::WorkerConfig {
        on_work: Some(missing.clone()),
        drain: false,
        ..h.config(&env, &key, dir.path())
    };
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        run_poll(config, CancellationToken::new()),
    )
    .await
    .unwrap()
    .unwrap_err()
    .to_string();
    let expected = format!(
        "fatal worker error: on-work script \"{}\" is unrunnable: ",
        missing.display()
    );
    assert!(err.starts_with(&expected), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_sigterm_to_the_script() {
    let h = start().await;
    let (env, key) = h.environment().await;
    let agent = h.agent(json!([])).await;
    let sid = h.session(&env, &agent, json!({"turns": []})).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("terminated");
    let started = dir.path().join("started");
    let script = dir.path().join("on-work.sh");
    let body = format!(
        "#!/bin/sh\ntrap 'touch {0}; exit 0' TERM\ntouch {1}\nwhile true; do sleep 0.1; done\n",
        marker.display(),
        started.display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = sandkeep_worker::WorkerConfig {
        on_work: Some(script),
        drain: false,
        drain_timeout: Duration::from_secs(60),
        ..h.config(&env, &key, dir.path())
    };
    let shutdown = CancellationToken::new();
    let poller = tokio::spawn(run_poll(config, shutdown.clone()));
    assert!(
        common::eventually(10, || started.exists()).await,
        "script started"
    );
    shutdown.cancel();
    let done = tokio::time::timeout(Duration::from_secs(10), poller).await;
    done.expect("SIGTERM, not the 60 s drain timeout, ended the script")
        .unwrap()
        .unwrap();
    assert!(marker.exists(), "the script saw SIGTERM");
    let items = h.work_items(&env, &key).await;
    assert_eq!(
        items
            .iter()
            .find(|w| w["data"]["id"] == sid.as_str())
            .unwrap()["state"],
        "stopping"
    );
}
