//! `sandkeep demo`: the main job end to end on one machine.
//!
//! It starts the control-plane emulator in-process on a free loopback port, creates an
//! environment, an agent and a session whose scripted agent uses every tool on a
//! temporary copy of a real directory, runs a real worker against it (under the
//! configured isolation), shows progress as results arrive, and prints a transcript.

mod copy;
mod scenario;
mod transcript;

use anyhow::Context;
use sandkeep_api::{Client, ClientConfig, Helper};
use sandkeep_emulator::{Emulator, EmulatorConfig};
use sandkeep_sandbox::Policy;
use sandkeep_worker::{WorkdirLayout, WorkerConfig};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Options of `sandkeep demo`.
pub struct DemoOptions {
    /// The directory to copy (never modified).
    pub source: PathBuf,
    pub policy: Policy,
    pub verbose: bool,
}

/// How long the whole scenario may take before the demo gives up.
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

/// Run the demo; `Ok(true)` when every expectation held.
pub async fn run(options: DemoOptions) -> anyhow::Result<bool> {
    if !options.source.is_dir() {
        anyhow::bail!(
            "--source {} is not a directory to copy",
            options.source.display()
        );
    }
    let started = Instant::now();
    // Survey the copy first: a source the demo cannot use fails before anything starts.
    let workdir = tempfile::Builder::new()
        .prefix("sandkeep-demo-")
        .tempdir()?;
    let staging = workdir.path().join("staging");
    let stats = copy::copy_tree(&options.source, &staging)?;
    let survey = scenario::survey(&staging)?;
    let script = scenario::build(&staging, &survey);
    let copy_line = format!(
        "  workspace    copy of {} ({} files, {} KiB)",
        options.source.display(),
        stats.files,
        stats.bytes / 1024
    );

    let (emulator, addr) = Emulator::spawn(EmulatorConfig::default(), "127.0.0.1:0")
        .await
        .context("cannot start the embedded emulator")?;
    let base_url = format!("http://{addr}");
    let admin_key = emulator.config().admin_key.clone();
    let admin = Client::new(
        ClientConfig {
            base_url: base_url.clone(),
            ..ClientConfig::default()
        },
        &admin_key,
        Helper::None,
    )?;
    println!("sandkeep demo");
    println!("  emulator     {base_url} (in-process)");
    println!(
        "  isolation    {:?}, network {}",
        options.policy.isolation,
        options.policy.network_label()
    );
    println!("{copy_line}");

    let env = admin
        .post_json(
            "/v1/environments",
            &json!({"name": "sandkeep-demo", "config": {"type": "self_hosted"}}),
        )
        .await?;
    let env_id = str_field(&env, "id")?;
    let key = admin
        .post_json(
            &format!("/v1/emulator/environments/{env_id}/keys"),
            &json!({}),
        )
        .await?;
    let env_key = str_field(&key, "key")?;
    let agent = admin
        .post_json(
            "/v1/agents",
            &json!({"name": "demo-surveyor", "model": "claude-sonnet-4-5", "tools": [{"type": "agent_toolset_20260401"}]}),
        )
        .await?;

    let session = admin
        .post_json(
            "/v1/emulator/sessions",
            &json!({"agent": str_field(&agent, "id")?, "environment_id": env_id, "scenario": script}),
        )
        .await?;
    let session_id = str_field(&session, "id")?;
    // The per-session layout puts the session's files at <workdir>/sessions/<id>.
    let session_dir = workdir.path().join("sessions").join(&session_id);
    std::fs::create_dir_all(session_dir.parent().unwrap_or(workdir.path()))?;
    std::fs::rename(&staging, &session_dir).context("cannot place the workspace copy")?;
    admin
        .post_json(
            &format!("/v1/sessions/{session_id}/events"),
            &json!({"events": [{"type": "user.message", "content": [{"type": "text", "text": "Survey this project and leave a note."}]}]}),
        )
        .await?;
    println!("  session      {session_id}\n");

    let shutdown = CancellationToken::new();
    let config = WorkerConfig {
        client: ClientConfig {
            base_url: base_url.clone(),
            ..ClientConfig::default()
        },
        environment_id: Some(env_id.clone()),
        environment_key: Some(env_key),
        worker_id: "sandkeep-demo-worker".into(),
        workdir: workdir.path().to_path_buf(),
        layout: WorkdirLayout::PerSession,
        max_idle: Some(Duration::from_millis(500)),
        max_sessions: 4,
        drain_timeout: Duration::from_secs(10),
        drain: false,
        reclaim_older_than_ms: None,
        on_work: None,
        policy: options.policy.clone(),
        keep_workspace: false,
        tool_timeout: Duration::from_secs(150),
    };
    let worker = tokio::spawn(sandkeep_worker::run_poll(config, shutdown.clone()));

    let followed = transcript::follow(&admin, &session_id, started, DEMO_TIMEOUT).await;
    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(15), worker).await {
        Ok(Ok(Err(e))) => println!("worker ended with an error: {e:#}"),
        Ok(Err(e)) => println!("worker task failed: {e}"),
        Err(_) => println!("worker did not drain within 15 s"),
        Ok(Ok(Ok(()))) => {}
    }
    followed?;
    let state = admin
        .get_json(&format!("/v1/emulator/sessions/{session_id}/scenario"))
        .await?;
    let events = transcript::all_events(&admin, &session_id).await?;
    transcript::print(&events, &state, &survey, &options.policy, started.elapsed());
    Ok(state["passed"].as_bool().unwrap_or(false))
}

fn str_field(v: &Value, key: &str) -> anyhow::Result<String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("emulator response lacks {key:?}: {v}"))
}
