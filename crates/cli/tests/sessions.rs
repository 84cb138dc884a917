//! End-to-end sessions: the real `sandkeep worker poll` binary against the real
//! emulator over HTTP, driving every builtin tool, custom tools, skills and bad
//! input through scripted scenarios.

mod common;

use common::process::run_to_exit;
use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A 1×1 PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn canary() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("sk-canary-{}-{nanos}", std::process::id())
}

/// One call per step, so each may rely on the previous one's effects.
fn every_tool_steps(secrets: &[&str], probe_parent: bool) -> Vec<Vec<Value>> {
    let ok = |extra: Value| {
        let mut expect = json!({"is_error": false});
        expect
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap());
        expect
    };
    let mut steps = vec![
        call(
            "write",
            json!({"file_path": "notes/a.txt", "content": "alpha\nbeta\ngamma\n"}),
            ok(json!({"equals": "wrote 17 bytes to notes/a.txt"})),
        ),
        call(
            "read",
            json!({"file_path": "notes/a.txt"}),
            ok(json!({"equals": "alpha\nbeta\ngamma\n"})),
        ),
        call(
            "read",
            json!({"file_path": "notes/a.txt", "view_range": [2, 3]}),
            ok(json!({"equals": "beta\ngamma"})),
        ),
        call(
            "edit",
            json!({"file_path": "notes/a.txt", "old_string": "beta", "new_string": "BETA"}),
            ok(json!({"equals": "edited notes/a.txt (1 replacement(s))"})),
        ),
        call(
            "grep",
            json!({"pattern": "BE.A"}),
            ok(json!({"contains": ["a.txt:2:BETA"]})),
        ),
        call(
            "glob",
            json!({"pattern": "**/*.txt"}),
            ok(json!({"contains": ["notes/a.txt"]})),
        ),
        call(
            "bash",
            json!({"command": "cd notes && cat a.txt && export MARK=persisted"}),
            ok(json!({"contains": ["alpha\nBETA\ngamma"]})),
        ),
        call(
            "bash",
            json!({"command": format!("pwd; echo $MARK; printf %s '{PNG_BASE64}' | base64 -d > ../pic.png && echo png-ok")}),
            ok(json!({"contains": ["/notes", "persisted", "png-ok"]})),
        ),
        call(
            "read",
            json!({"file_path": "pic.png"}),
            ok(json!({"block_types": ["image"]})),
        ),
        call(
            "bash",
            json!({"command": "env; tr '\\0' '\\n' < /proc/self/environ; echo env-dumped"}),
            ok(json!({"contains": ["env-dumped"], "not_contains": secrets})),
        ),
    ];
    if probe_parent {
        // Inside a sandbox the parent and PID 1 must not expose the worker's secrets either.
        steps.push(call(
            "bash",
            json!({"command": "for p in $PPID 1; do tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null; done; echo parents-dumped"}),
            ok(json!({"contains": ["parents-dumped"], "not_contains": secrets})),
        ));
    }
    steps.into_iter().map(|c| vec![c]).collect()
}

async fn run_every_tool(isolation: &str) {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let secret = canary();
    let secrets = [secret.as_str(), setup.env_key.as_str()];
    let scenario = one_turn_then_terminate(every_tool_steps(&secrets, isolation == "process"));
    let sid = emulator
        .scenario_session(&setup, &setup.agent_id, scenario)
        .await;
    let dir = workdir();
    if isolation == "process" {
        // The sandbox's own uid must be able to traverse --workdir (as /workspace would be).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let spec = WorkerArgs::poll(&emulator.base_url, &setup, dir.path())
        .set("--isolation", isolation)
        .env("ANTHROPIC_API_KEY", &secret)
        .env("ANTHROPIC_AUTH_TOKEN", &secret);
    let worker = Worker::spawn("every-tool", &spec);

    // Fail fast (not at the deadline) when the worker gives up on the item.
    wait_for(
        "the scenario to complete",
        Duration::from_secs(30),
        || async {
            if let Some(line) = worker
                .logs()
                .iter()
                .find(|l| l.contains("work item failed"))
            {
                panic!("the worker failed the item: {line}");
            }
            (emulator.scenario_state(&sid).await["complete"] == true).then_some(())
        },
    )
    .await;
    let state = emulator
        .wait_scenario_passed(&sid, Duration::from_secs(30))
        .await;
    assert_eq!(
        state["results"].as_array().map(Vec::len),
        Some(every_tool_steps(&secrets, isolation == "process").len())
    );
    let item = emulator
        .wait_stopped(&setup, &sid, Duration::from_secs(15))
        .await;
    assert!(item["stopped_at"].is_string(), "{item:#}");
    let session_dir = dir.path().join("sessions").join(&sid);
    wait_for(
        "the session directory to be removed",
        Duration::from_secs(5),
        || async { (!session_dir.exists()).then_some(()) },
    )
    .await;

    let events = emulator.events(&sid).await;
    assert_each_call_answered_once(&events);
    let results = all_result_text(&events);
    let logs = worker.logs_text();
    for s in secrets {
        assert!(!results.contains(s), "a secret leaked into a tool result");
        assert!(
            !logs.contains(s),
            "a secret leaked into the worker's log:\n{logs}"
        );
    }
}

#[tokio::test]
async fn every_tool_round_trips_and_cleans_up() {
    run_every_tool("none").await;
}

#[tokio::test]
async fn every_tool_under_process_isolation() {
    let (status, stdout, _) = run_to_exit(
        &["doctor", "--isolation", "process"],
        &[],
        Duration::from_secs(20),
    )
    .await;
    if !status.success() {
        println!("SKIP: `sandkeep doctor --isolation process` failed on this host: {stdout}");
        return;
    }
    run_every_tool("process").await;
}

#[tokio::test]
async fn custom_calls_are_left_to_the_client_and_keep_the_session_alive() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let agent = emulator
        .agent(json!({"tools": [
            {"type": "agent_toolset_20260401"},
            {"type": "custom", "name": "lookup_weather", "input_schema": {"type": "object"}}
        ]}))
        .await;
    let step = vec![
        json!({"name": "lookup_weather", "kind": "custom", "input": {"city": "Oslo"}, "expect": {"equals": "sunny"}}),
        call(
            "bash",
            json!({"command": "echo builtin-ok"}),
            json!({"is_error": false, "equals": "builtin-ok"}),
        ),
    ];
    let sid = emulator
        .scenario_session(&setup, &agent, one_turn(vec![step]))
        .await;
    let dir = workdir();
    let worker = Worker::spawn(
        "custom",
        &WorkerArgs::poll(&emulator.base_url, &setup, dir.path()),
    );

    let custom_id = wait_for(
        "the builtin call to be answered",
        Duration::from_secs(15),
        || async {
            let events = emulator.events(&sid).await;
            let bash = events.iter().find(|e| e["type"] == "agent.tool_use")?["id"]
                .as_str()?
                .to_string();
            (result_count(&events, &bash) == 1).then(|| {
                events
                    .iter()
                    .find(|e| e["type"] == "agent.custom_tool_use")
                    .unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        },
    )
    .await;
    // Three times --max-idle: an unanswered custom call must keep the session open.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = emulator.events(&sid).await;
    assert_eq!(
        result_count(&events, &custom_id),
        0,
        "the worker answered a custom tool call"
    );
    let item = emulator
        .work_for_session(&setup, &sid)
        .await
        .expect("work item");
    assert_ne!(
        item["state"], "stopped",
        "the worker idled out with a custom call outstanding: {item:#}"
    );
    assert!(item["stop_requested_at"].is_null(), "{item:#}");

    emulator
        .send_event(
            &sid,
            json!({"type": "user.custom_tool_result", "custom_tool_use_id": custom_id,
                   "content": [{"type": "text", "text": "sunny"}]}),
        )
        .await;
    emulator
        .wait_scenario_passed(&sid, Duration::from_secs(10))
        .await;
    emulator
        .wait_stopped(&setup, &sid, Duration::from_secs(10))
        .await;
    let events = emulator.events(&sid).await;
    assert_each_call_answered_once(&events);
    assert_eq!(result_count(&events, &custom_id), 1);
    // The session was only left idle, not ended: its directory stays for the
    // session's next work item.
    assert!(dir.path().join("sessions").join(&sid).is_dir());
    drop(worker);
}

#[tokio::test]
async fn skills_are_installed_for_the_session_and_removed_after() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let skill = emulator
        .admin_post(
            "/v1/emulator/skills",
            json!({"name": "greeter", "description": "says hello", "files": {
                "SKILL.md": "# Greeter\nRun scripts/run.sh.\n",
                "scripts/run.sh": "#!/bin/sh\necho hello-from-skill\n"
            }}),
        )
        .await;
    let skill_id = skill["skill_id"].as_str().expect("skill_id");
    let agent = emulator
        .agent(json!({"tools": [{"type": "agent_toolset_20260401"}],
                      "skills": [{"type": "custom", "skill_id": skill_id, "version": "latest"}]}))
        .await;
    let command = "cat skills/greeter/SKILL.md && test -x skills/greeter/scripts/run.sh && skills/greeter/scripts/run.sh";
    let steps = vec![
        vec![call(
            "bash",
            json!({"command": command}),
            json!({"is_error": false, "contains": ["# Greeter", "hello-from-skill"]}),
        )],
        vec![call(
            "read",
            json!({"file_path": "skills/greeter/SKILL.md"}),
            json!({"contains": ["Run scripts/run.sh."]}),
        )],
    ];
    let sid = emulator
        .scenario_session(&setup, &agent, one_turn(steps))
        .await;
    let dir = workdir();
    let spec = WorkerArgs::poll(&emulator.base_url, &setup, dir.path()).arg(&["--keep-workspace"]);
    let _worker = Worker::spawn("skills", &spec);

    emulator
        .wait_scenario_passed(&sid, Duration::from_secs(20))
        .await;
    emulator
        .wait_stopped(&setup, &sid, Duration::from_secs(10))
        .await;
    // --keep-workspace keeps the session's own files but never the downloaded skills.
    let session_dir = dir.path().join("sessions").join(&sid);
    assert!(
        session_dir.is_dir(),
        "--keep-workspace removed {}",
        session_dir.display()
    );
    let skill_dir = session_dir.join("skills/greeter");
    wait_for(
        "the skill directory to be removed",
        Duration::from_secs(5),
        || async { (!skill_dir.exists()).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn bad_input_gets_error_results_and_the_worker_carries_on() {
    let emulator = Emulator::start();
    let setup = emulator.setup().await;
    let turn1 = vec![
        vec![call(
            "bash",
            json!({"command": 1, "x": 2}),
            json!({"is_error": true, "equals": "ValueError('Invalid arguments for function bash')"}),
        )],
        vec![call(
            "bash",
            json!({"command": "printf '\\377\\376\\000bin' > blob.dat && echo wrote-blob"}),
            json!({"contains": ["wrote-blob"]}),
        )],
        vec![call(
            "read",
            json!({"file_path": "blob.dat"}),
            json!({"is_error": true,
                   "equals": "read: blob.dat: not valid UTF-8 text (binary files are only supported for image/PDF extensions)"}),
        )],
        vec![call(
            "bash",
            json!({"command": "head -c 200000 /dev/zero | tr '\\0' a"}),
            json!({"is_error": false, "contains": ["[output truncated]\naaaa"]}),
        )],
    ];
    let turn2 = vec![vec![call(
        "bash",
        json!({"command": "echo still-alive"}),
        json!({"equals": "still-alive"}),
    )]];
    let scenario =
        json!({"turns": [{"steps": turn1, "message": "one"}, {"steps": turn2, "message": "two"}]});
    let sid = emulator
        .scenario_session(&setup, &setup.agent_id, scenario)
        .await;
    let dir = workdir();
    // A long idle grace: turn 2 starts only after the malformed events are in.
    let spec = WorkerArgs::poll(&emulator.base_url, &setup, dir.path()).set("--max-idle", "30s");
    let mut worker = Worker::spawn("bad-input", &spec);

    wait_for("turn 1 to finish", Duration::from_secs(20), || async {
        let state = emulator.scenario_state(&sid).await;
        (state["turn"] == 1).then_some(())
    })
    .await;
    let injected = emulator
        .inject_events(
            &sid,
            json!([
                {"type": "agent.tool_use", "input": {"command": "echo nameless"}},
                {"type": "agent.tool_use", "name": "no_such_tool", "input": {}},
                {"type": "agent.mystery_event", "payload": [1, 2, 3]},
            ]),
        )
        .await;
    emulator.send_message(&sid, "next").await;
    let state = emulator
        .wait_scenario_passed(&sid, Duration::from_secs(15))
        .await;

    let truncated = state["results"][3]["output"].as_str().unwrap_or_default();
    assert!(
        truncated.len() <= 102_400 + "[output truncated]\n".len(),
        "{} bytes",
        truncated.len()
    );
    assert!(truncated.len() > 100_000, "{} bytes", truncated.len());
    // Give the worker time to (wrongly) answer the malformed calls, then check it did not.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = emulator.events(&sid).await;
    for id in injected["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
    {
        assert_eq!(
            result_count(&events, id),
            0,
            "the worker answered malformed/unknown call {id}"
        );
    }
    assert!(
        worker.exit_status().is_none(),
        "the worker exited:\n{}",
        worker.logs_text()
    );
    assert!(Path::new(dir.path()).exists());
}
