//! Runner loop tests with a scripted session API and tool host (protocol.md §12.4,
//! cases 54, 78, 79, 81, 86–93, 97-like cancellation). Time is paused, so backoff
//! and idle waits are exact and instant.

use super::io::{EventSource, Failure, SessionEvents, ToolHost};
use super::*;
use sandkeep_api::Page;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::time::Instant;

/// One stream connection: how opening it goes, the history pages listed after
/// it, and the live events it delivers before closing (or hanging).
struct Conn {
    open: Result<(), Failure>,
    history: Vec<Result<Page<Value>, Failure>>,
    live: Vec<Result<Value, Failure>>,
    hang: bool,
}

fn conn(history: Vec<Value>, live: Vec<Value>) -> Conn {
    Conn {
        open: Ok(()),
        history: vec![Ok(Page {
            data: history,
            next_page: None,
        })],
        live: live.into_iter().map(Ok).collect(),
        hang: true,
    }
}

#[derive(Default)]
struct Log {
    opens: Vec<Instant>,
    pages: Vec<Option<String>>,
    sent: Vec<Value>,
    send_attempts: usize,
}

type HistoryPages = VecDeque<Result<Page<Value>, Failure>>;

#[derive(Clone, Default)]
struct FakeSession {
    conns: Arc<Mutex<VecDeque<Conn>>>,
    pending_history: Arc<Mutex<HistoryPages>>,
    sends: Arc<Mutex<VecDeque<Result<(), Failure>>>>,
    log: Arc<Mutex<Log>>,
}

struct FakeStream {
    live: VecDeque<Result<Value, Failure>>,
    hang: bool,
}

impl EventSource for FakeStream {
    async fn next_event(&mut self) -> Option<Result<Value, Failure>> {
        match self.live.pop_front() {
            Some(item) => Some(item),
            None if self.hang => futures::future::pending().await,
            None => None,
        }
    }
}

impl SessionEvents for FakeSession {
    type Stream = FakeStream;

    async fn open_stream(&self) -> Result<FakeStream, Failure> {
        self.log.lock().unwrap().opens.push(Instant::now());
        let Some(conn) = self.conns.lock().unwrap().pop_front() else {
            return Ok(FakeStream {
                live: VecDeque::new(),
                hang: true,
            });
        };
        conn.open?;
        *self.pending_history.lock().unwrap() = conn.history.into();
        Ok(FakeStream {
            live: conn.live.into(),
            hang: conn.hang,
        })
    }

    async fn list_page(&self, page: Option<String>) -> Result<Page<Value>, Failure> {
        self.log.lock().unwrap().pages.push(page);
        let next = self.pending_history.lock().unwrap().pop_front();
        next.unwrap_or_else(|| {
            Ok(Page {
                data: vec![],
                next_page: None,
            })
        })
    }

    async fn send(&self, event: Value) -> Result<(), Failure> {
        let mut log = self.log.lock().unwrap();
        log.send_attempts += 1;
        let outcome = self.sends.lock().unwrap().pop_front().unwrap_or(Ok(()));
        if outcome.is_ok() {
            log.sent.push(event);
        }
        outcome
    }
}

struct FakeHost {
    delay: Duration,
    calls: Mutex<Vec<String>>,
}

impl ToolHost for FakeHost {
    fn owns(&self, name: &str) -> bool {
        name == "echo"
    }

    async fn call(&self, _name: &str, input: Value, _timeout: Duration) -> ToolOutput {
        self.calls.lock().unwrap().push(input.to_string());
        tokio::time::sleep(self.delay).await;
        ToolOutput::text(format!("got {}", input["x"]))
    }
}

fn host(delay_ms: u64) -> Arc<FakeHost> {
    Arc::new(FakeHost {
        delay: Duration::from_millis(delay_ms),
        calls: Mutex::new(Vec::new()),
    })
}

fn options(max_idle_ms: Option<u64>) -> RunnerOptions {
    let (_tx, rx) = watch::channel(None);
    RunnerOptions {
        max_idle: max_idle_ms.map(Duration::from_millis),
        tool_timeout: Duration::from_secs(150),
        send_window: rx,
    }
}

fn session(conns: Vec<Conn>) -> FakeSession {
    let fake = FakeSession::default();
    *fake.conns.lock().unwrap() = conns.into();
    fake
}

fn echo(id: &str) -> Value {
    json!({"type": "agent.tool_use", "id": id, "name": "echo", "input": {"x": 42}})
}

fn terminated() -> Value {
    json!({"type": "session.status_terminated", "id": "t"})
}

async fn run_to_end(api: &FakeSession, host: &Arc<FakeHost>, opts: RunnerOptions) -> StopReason {
    run(
        api.clone(),
        Arc::clone(host),
        opts,
        CancellationToken::new(),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn case_54_81_executes_then_ends_on_termination() {
    let api = session(vec![conn(vec![], vec![echo("tu_1"), terminated()])]);
    let h = host(10);
    assert_eq!(
        run_to_end(&api, &h, options(Some(50))).await,
        StopReason::Terminated
    );
    let log = api.log.lock().unwrap();
    assert_eq!(
        log.sent,
        vec![
            json!({"type": "user.tool_result", "tool_use_id": "tu_1", "is_error": false,
                    "content": [{"type": "text", "text": "got 42"}]})
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn case_79_idle_after_end_turn_ends() {
    let idle = json!({"type": "session.status_idle", "stop_reason": {"type": "end_turn"}});
    let api = session(vec![conn(vec![], vec![idle])]);
    let started = Instant::now();
    assert_eq!(
        run_to_end(&api, &host(0), options(Some(50))).await,
        StopReason::Idle
    );
    assert_eq!(started.elapsed(), Duration::from_millis(50));
}

#[tokio::test(start_paused = true)]
async fn case_78_countdown_starts_after_the_released_call() {
    let history = vec![
        json!({"type": "agent.tool_use", "id": "g", "name": "echo", "input": {"x": 1}, "evaluated_permission": "ask"}),
        json!({"type": "user.tool_confirmation", "tool_use_id": "g", "result": "allow"}),
        json!({"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}),
    ];
    let api = session(vec![conn(history, vec![])]);
    let started = Instant::now();
    assert_eq!(
        run_to_end(&api, &host(600), options(Some(400))).await,
        StopReason::Idle
    );
    assert_eq!(started.elapsed(), Duration::from_millis(1000));
    assert_eq!(api.log.lock().unwrap().sent.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn case_86_transient_send_failures_retry_within_the_window() {
    let api = session(vec![conn(vec![], vec![echo("tu_1"), terminated()])]);
    *api.sends.lock().unwrap() = (0..1000)
        .map(|_| Err(Failure::Transient("HTTP 500".into())))
        .collect();
    let (tx, rx) = watch::channel(Some(20));
    let opts = RunnerOptions {
        send_window: rx,
        ..options(None)
    };
    let started = Instant::now();
    run_to_end(&api, &host(0), opts).await;
    drop(tx);
    let log = api.log.lock().unwrap();
    assert!(log.sent.is_empty());
    // 1, 2, 4, 8 s (jittered to [d/2, d)) then clipped at 20 s.
    assert!(log.send_attempts >= 5, "{} attempts", log.send_attempts);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(20) && elapsed < Duration::from_secs(21),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn case_87_fatal_send_gives_up_after_one_attempt() {
    let api = session(vec![conn(vec![], vec![echo("tu_1"), terminated()])]);
    *api.sends.lock().unwrap() = vec![Err(Failure::Fatal("HTTP 400".into()))].into();
    run_to_end(&api, &host(0), options(None)).await;
    assert_eq!(api.log.lock().unwrap().send_attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn case_90_fatal_stream_connect_ends_after_one_request() {
    let api = session(vec![Conn {
        open: Err(Failure::Fatal("HTTP 401".into())),
        history: vec![],
        live: vec![],
        hang: true,
    }]);
    let reason = run_to_end(&api, &host(0), options(None)).await;
    assert!(matches!(reason, StopReason::StreamRejected(_)));
    assert_eq!(api.log.lock().unwrap().opens.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn case_91_92_partial_history_dispatches_nothing_and_pages_are_followed() {
    let partial = Conn {
        open: Ok(()),
        history: vec![
            Ok(Page {
                data: vec![echo("tu_1")],
                next_page: Some("p2".into()),
            }),
            Err(Failure::Transient("HTTP 500".into())),
        ],
        live: vec![],
        hang: false,
    };
    let full = Conn {
        open: Ok(()),
        history: vec![
            Ok(Page {
                data: vec![echo("tu_1")],
                next_page: Some("p2".into()),
            }),
            Ok(Page {
                data: vec![echo("tu_2")],
                next_page: None,
            }),
        ],
        live: vec![Ok(
            json!({"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}),
        )],
        hang: true,
    };
    let api = session(vec![partial, full]);
    let h = host(0);
    // Ends on idle, which waits for queued calls (a termination would race them).
    run_to_end(&api, &h, options(Some(100))).await;
    let log = api.log.lock().unwrap();
    assert_eq!(
        log.pages,
        vec![None, Some("p2".into()), None, Some("p2".into())]
    );
    assert_eq!(
        log.sent.len(),
        2,
        "each call executed exactly once, after the complete listing"
    );
    assert_eq!(h.calls.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn case_93_reconnect_backoff_grows_and_resets() {
    let empty = || Conn {
        open: Ok(()),
        history: vec![],
        live: vec![],
        hang: false,
    };
    let with_event = Conn {
        open: Ok(()),
        history: vec![],
        live: vec![Ok(json!({"type": "agent.message"}))],
        hang: false,
    };
    let last = conn(vec![], vec![terminated()]);
    let api = session(vec![empty(), empty(), empty(), with_event, empty(), last]);
    run_to_end(&api, &host(0), options(None)).await;
    let log = api.log.lock().unwrap();
    let gaps: Vec<u128> = log
        .opens
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(gaps, vec![500, 1000, 2000, 500, 1000]);
}

#[tokio::test(start_paused = true)]
async fn cancellation_lets_the_inflight_call_finish_and_post() {
    let api = session(vec![conn(vec![], vec![echo("tu_1"), echo("tu_2")])]);
    let h = host(1000);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let reason = run(api.clone(), Arc::clone(&h), options(None), cancel).await;
    assert_eq!(reason, StopReason::Cancelled);
    assert_eq!(
        api.log.lock().unwrap().sent.len(),
        1,
        "queued tu_2 is not started after cancellation"
    );
}

#[tokio::test(start_paused = true)]
async fn case_62_unowned_call_keeps_runner_alive() {
    let history = vec![
        json!({"type": "agent.tool_use", "id": "x", "name": "not_mine", "input": {}}),
        json!({"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}),
    ];
    let api = session(vec![conn(history, vec![])]);
    let cancel = CancellationToken::new();
    let outcome = tokio::time::timeout(
        Duration::from_secs(1),
        run(api.clone(), host(0), options(Some(100)), cancel),
    )
    .await;
    assert!(outcome.is_err(), "runner must still be running after 1 s");
    assert!(api.log.lock().unwrap().sent.is_empty());
}
