//! Session teardown on the host, for each way a session ends: terminated by the
//! control plane, left after `--max-idle`, and cut short by SIGTERM to the worker.
//! Afterwards no process of the session, no cgroup and (for a terminated session)
//! no workspace may remain.

use crate::common::Worker;
use crate::host::{all_procs, assert_gone, assert_no_leftover_dirs, is_running, Footprint};
use crate::rig::Rig;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn lifecycle_terminated_idle_and_sigterm_leave_nothing() {
    let Some(mut rig) = Rig::new("lifecycle").await else {
        return;
    };
    let spec = rig.worker_args().set("--max-idle", "1s");
    rig.worker = Some(Worker::spawn("lifecycle", &spec));
    let terminated = rig.session().await;
    let idle = rig.session().await;
    let signalled = rig.session().await;
    let mut footprints = Vec::new();
    for s in [&terminated, &idle, &signalled] {
        s.ok("echo x > file.txt && (sleep 1 &) && true").await;
        let footprint = Footprint::of(&s.id);
        footprint.assert_live(&s.id);
        footprints.push(footprint);
    }

    // 1. session.status_terminated through the admin events endpoint.
    rig.terminate(&terminated.id).await;
    rig.emulator
        .wait_stopped(&rig.setup, &terminated.id, Duration::from_secs(15))
        .await;
    assert_gone("lifecycle/terminated", &terminated.id, &footprints[0]).await;
    assert_no_leftover_dirs(&terminated.id, &rig.workspace(&terminated.id)).await;

    // 2. The turn ends; the worker leaves the session after --max-idle 1s.
    let idle_from = Instant::now();
    rig.emulator
        .inject_events(
            &idle.id,
            json!([{"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}]),
        )
        .await;
    rig.emulator
        .wait_stopped(&rig.setup, &idle.id, Duration::from_secs(15))
        .await;
    println!(
        "lifecycle: idle session left after {:?}",
        idle_from.elapsed()
    );
    assert!(idle_from.elapsed() >= Duration::from_millis(900));
    assert_gone("lifecycle/idle", &idle.id, &footprints[1]).await;
    // The session is dormant, not over: its files stay for its next work item.
    assert!(rig.workspace(&idle.id).join("file.txt").exists());

    // 3. SIGTERM to the worker while a session is live.
    let ids = [terminated.id.clone(), idle.id.clone(), signalled.id.clone()];
    let worker_pid = rig.worker().pid() as i32;
    let helpers: Vec<_> = all_procs()
        .into_iter()
        .filter(|p| p.ppid == worker_pid)
        .collect();
    rig.worker().terminate();
    let status = rig
        .worker
        .as_mut()
        .unwrap()
        .wait_exit(Duration::from_secs(20))
        .await;
    assert!(
        status.success(),
        "the worker exited with {status} on SIGTERM"
    );
    assert_gone("lifecycle/sigterm", &ids[2], &footprints[2]).await;
    for helper in &helpers {
        let still = crate::host::proc_info(helper.pid)
            .filter(|p| p.cmdline == helper.cmdline && is_running(p.pid as u32));
        assert!(
            still.is_none(),
            "a child of the worker survived it: {helper:?}"
        );
    }
    rig.assert_no_secret_leaked(&ids).await;
}
