//! The `sandkeep worker` command line: clear errors for bad invocations, and
//! `worker run` serving an item claimed by someone else.

mod common;

use common::process::run_to_exit;
use common::*;
use reqwest::Method;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const QUICK: Duration = Duration::from_secs(15);

#[tokio::test]
async fn poll_without_credentials_says_what_is_required() {
    let (status, _, stderr) = run_to_exit(
        &[
            "worker",
            "poll",
            "--isolation",
            "none",
            "--base-url",
            "http://127.0.0.1:9",
        ],
        &[],
        QUICK,
    )
    .await;
    assert!(!status.success());
    assert!(
        stderr.contains("environment_id and environment_key are required"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ANTHROPIC_ENVIRONMENT_KEY"),
        "the error should say how to fix it: {stderr}"
    );
}

#[tokio::test]
async fn run_without_anything_names_the_first_missing_value() {
    let (status, _, stderr) =
        run_to_exit(&["worker", "run", "--isolation", "none"], &[], QUICK).await;
    assert!(!status.success());
    assert!(
        stderr
            .contains("handle_item: work_id is required \u{2014} pass it or set ANTHROPIC_WORK_ID"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_bad_duration_is_a_usage_error() {
    let (status, _, stderr) = run_to_exit(
        &["worker", "poll", "--max-idle", "abc", "--isolation", "none"],
        &[],
        QUICK,
    )
    .await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--max-idle"), "{stderr}");
    assert!(stderr.contains("invalid duration \"abc\""), "{stderr}");
}

#[tokio::test]
async fn a_world_readable_secret_file_is_refused() {
    let dir = workdir();
    let path = dir.path().join("secret");
    std::fs::write(&path, "s3cret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = path.display().to_string();
    let args = [
        "worker",
        "run",
        "--isolation",
        "none",
        "--work-id",
        "w",
        "--environment-id",
        "e",
        "--session-id",
        "s",
    ];
    let (status, _, stderr) = run_to_exit(
        &[&args[..], &["--work-secret-file", &path]].concat(),
        &[],
        QUICK,
    )
    .await;
    assert!(!status.success());
    assert!(stderr.contains("run chmod o-rw on it"), "{stderr}");
}

#[tokio::test]
async fn a_wrong_key_is_fatal_not_retried_forever() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let dir = workdir();
    let workdir = dir.path().display().to_string();
    let args = [
        "worker",
        "poll",
        "--isolation",
        "none",
        "--environment-id",
        &setup.env_id,
        "--environment-key",
        "sk-wrong-key",
        "--base-url",
        &emulator.base_url,
        "--workdir",
        &workdir,
    ];
    let (status, _, stderr) = run_to_exit(&args, &[], Duration::from_secs(20)).await;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("401") || stderr.to_lowercase().contains("authentication"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("sk-wrong-key"),
        "the key was logged: {stderr}"
    );
}

#[tokio::test]
async fn worker_run_serves_an_item_claimed_elsewhere() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let steps = vec![
        vec![call(
            "write",
            json!({"file_path": "r.txt", "content": "ran"}),
            json!({"is_error": false}),
        )],
        vec![call(
            "bash",
            json!({"command": "cat r.txt"}),
            json!({"equals": "ran"}),
        )],
    ];
    let sid = emulator
        .scenario_session(&setup, &setup.agent_id, one_turn(steps))
        .await;
    let env = &setup.env_id;
    let item = emulator
        .ok(
            Method::GET,
            &format!("/v1/environments/{env}/work/poll?block_ms=500"),
            &setup.env_key,
            None,
        )
        .await;
    assert_eq!(item["data"]["id"], sid.as_str(), "{item:#}");
    let work_id = item["id"].as_str().unwrap();
    emulator
        .ok(
            Method::POST,
            &format!("/v1/environments/{env}/work/{work_id}/ack"),
            &setup.env_key,
            None,
        )
        .await;
    let secret = item["secret"].as_str().expect("the poll issued a secret");

    let dir = workdir();
    let workdir = dir.path().display().to_string();
    let args = [
        "worker",
        "run",
        "--isolation",
        "none",
        "--max-idle",
        "1s",
        "--base-url",
        &emulator.base_url,
        "--workdir",
        &workdir,
    ];
    let envs = [
        ("ANTHROPIC_WORK_ID", work_id),
        ("ANTHROPIC_ENVIRONMENT_ID", env.as_str()),
        ("ANTHROPIC_SESSION_ID", sid.as_str()),
        ("ANTHROPIC_WORK_SECRET", secret),
    ];
    let (status, _, stderr) = run_to_exit(&args, &envs, Duration::from_secs(20)).await;
    assert!(status.success(), "worker run failed: {stderr}");
    assert!(
        !stderr.contains(secret),
        "the work secret was logged: {stderr}"
    );

    emulator
        .wait_scenario_passed(&sid, Duration::from_secs(2))
        .await;
    emulator
        .wait_stopped(&setup, &sid, Duration::from_secs(2))
        .await;
    assert_each_call_answered_once(&emulator.events(&sid).await);
}

#[tokio::test]
async fn an_unreachable_workdir_is_refused_at_start_under_process_isolation() {
    // As root, sandboxed sessions run under their own uids and must traverse to
    // <workdir>/sessions/<id>; as another user the sessions share the worker's uid.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP: only meaningful as root");
        return;
    }
    let dir = workdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let wd = dir.path().join("w").display().to_string();
    let args = [
        "worker",
        "poll",
        "--environment-id",
        "e",
        "--environment-key",
        "k",
        "--workdir",
        &wd,
    ];
    let (status, _, stderr) = run_to_exit(&args, &[], QUICK).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not reachable by sandboxed sessions") && stderr.contains("chmod o+x"),
        "{stderr}"
    );
}
