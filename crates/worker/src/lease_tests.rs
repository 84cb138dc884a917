//! Heartbeat loop tests (protocol.md §12.3 cases 41–47), paused time.

use super::*;
use sandkeep_api::WorkState;
use std::collections::VecDeque;

enum Reply {
    Beat(&'static str, bool, WorkState, i64),
    Fail(HeartbeatFailure),
    Hang,
}

#[derive(Clone, Default)]
struct Fake {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// `(seconds since start, expected_last_heartbeat)` of each call.
    calls: Arc<Mutex<Vec<(u64, String)>>>,
    start: Arc<Mutex<Option<Instant>>>,
}

impl HeartbeatApi for Fake {
    async fn heartbeat(&self, expected: &str) -> Result<Heartbeat, HeartbeatFailure> {
        let start = *self.start.lock().unwrap().get_or_insert_with(Instant::now);
        self.calls
            .lock()
            .unwrap()
            .push((start.elapsed().as_secs(), expected.to_string()));
        let reply = self.replies.lock().unwrap().pop_front();
        match reply {
            Some(Reply::Beat(last, extended, state, ttl)) => Ok(Heartbeat {
                kind: "work_heartbeat".into(),
                last_heartbeat: last.into(),
                lease_extended: extended,
                state,
                ttl_seconds: ttl,
            }),
            Some(Reply::Fail(f)) => Err(f),
            Some(Reply::Hang) => futures::future::pending().await,
            None => Err(HeartbeatFailure::Transient("HTTP 503".into())),
        }
    }
}

fn fake(replies: Vec<Reply>) -> Fake {
    let f = Fake::default();
    *f.replies.lock().unwrap() = replies.into();
    f
}

async fn wait_end(lease: &Lease) -> LeaseEnd {
    lease.ended().cancelled().await;
    lease.reason().unwrap()
}

#[tokio::test(start_paused = true)]
async fn case_41_42_echoes_last_heartbeat_and_adapts_interval() {
    let api = fake(vec![
        Reply::Beat("2026-01-01T00:00:01Z", true, WorkState::Active, 60),
        Reply::Beat("t2", true, WorkState::Active, 4),
        Reply::Beat("t3", true, WorkState::Active, 0),
        Reply::Beat("t4", true, WorkState::Stopping, 0),
    ]);
    let lease = Lease::start(api.clone(), "w_1");
    assert_eq!(wait_end(&lease).await, LeaseEnd::HeartbeatStop);
    assert_eq!(*lease.ttl().borrow(), Some(4));
    let calls = api.calls.lock().unwrap().clone();
    let expected: Vec<(u64, String)> = vec![
        (0, "NO_HEARTBEAT".into()),
        (30, "2026-01-01T00:00:01Z".into()),
        (32, "t2".into()),
        (34, "t3".into()),
    ];
    assert_eq!(calls, expected);
}

#[tokio::test(start_paused = true)]
async fn case_43_stop_states_and_unextended_lease_end_it() {
    for reply in [
        Reply::Beat("t", true, WorkState::Stopped, 60),
        Reply::Beat("t", false, WorkState::Active, 60),
    ] {
        let lease = Lease::start(fake(vec![reply]), "w_1");
        assert_eq!(wait_end(&lease).await, LeaseEnd::HeartbeatStop);
        assert!(!lease.finish(LeaseEnd::RunnerDone).await.is_lost());
    }
}

#[tokio::test(start_paused = true)]
async fn case_44_45_precondition_failure_is_lost_other_4xx_rejected() {
    let lease = Lease::start(
        fake(vec![Reply::Fail(HeartbeatFailure::PreconditionFailed(
            "x".into(),
        ))]),
        "w",
    );
    assert_eq!(lease.finish_after_end().await, LeaseEnd::LeaseLost);
    let lease = Lease::start(
        fake(vec![Reply::Fail(HeartbeatFailure::Fatal(
            "HTTP 404".into(),
        ))]),
        "w",
    );
    let reason = lease.finish_after_end().await;
    assert_eq!(reason, LeaseEnd::Rejected);
    assert!(!reason.is_lost());
}

#[tokio::test(start_paused = true)]
async fn case_46_transient_failures_past_ttl_are_assumed_lost() {
    let api = fake(vec![]);
    let lease = Lease::start(api.clone(), "w");
    assert_eq!(wait_end(&lease).await, LeaseEnd::AssumedLost);
    let times: Vec<u64> = api.calls.lock().unwrap().iter().map(|c| c.0).collect();
    assert_eq!(times, vec![0, 30, 60, 90, 120]);
}

#[tokio::test(start_paused = true)]
async fn case_47_hanging_heartbeat_is_abandoned_after_the_interval() {
    let api = fake(vec![
        Reply::Hang,
        Reply::Beat("t", true, WorkState::Stopping, 60),
    ]);
    let lease = Lease::start(api.clone(), "w");
    assert_eq!(wait_end(&lease).await, LeaseEnd::HeartbeatStop);
    let times: Vec<u64> = api.calls.lock().unwrap().iter().map(|c| c.0).collect();
    // 30 s timeout, then the 30 s wait.
    assert_eq!(times, vec![0, 60]);
}

#[tokio::test(start_paused = true)]
async fn finishing_keeps_the_first_reason() {
    let api = fake(vec![Reply::Beat("t", true, WorkState::Active, 60)]);
    let lease = Lease::start(api, "w");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        lease.finish(LeaseEnd::RunnerDone).await,
        LeaseEnd::RunnerDone
    );
}

impl Lease {
    async fn finish_after_end(self) -> LeaseEnd {
        self.ended().cancelled().await;
        self.finish(LeaseEnd::RunnerDone).await
    }
}
