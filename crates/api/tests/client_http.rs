//! Client behaviour against a scripted in-process HTTP server (axum on 127.0.0.1:0).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use sandkeep_api::{ApiError, Client, ClientConfig, Helper, WorkState, NO_HEARTBEAT};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    fn count(&self, name: &str) -> usize {
        self.headers.get_all(name).iter().count()
    }
}

type Responder = Box<dyn FnOnce() -> Response + Send>;

#[derive(Clone, Default)]
struct Mock {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Responder>>>,
}

impl Mock {
    fn then(&self, responder: impl FnOnce() -> Response + Send + 'static) -> &Self {
        self.script.lock().unwrap().push_back(Box::new(responder));
        self
    }
    fn reply(&self, status: u16, headers: &[(&'static str, &'static str)], body: &str) -> &Self {
        let (headers, body) = (headers.to_vec(), body.to_owned());
        self.then(move || {
            let mut builder = Response::builder().status(status);
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            builder.body(Body::from(body)).unwrap()
        })
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn record(State(mock): State<Mock>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    mock.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body,
    });
    let next = mock.script.lock().unwrap().pop_front();
    match next {
        Some(responder) => responder(),
        None => Response::new(Body::from("{}")),
    }
}

async fn start() -> (Mock, ClientConfig) {
    let mock = Mock::default();
    let app = axum::Router::new()
        .fallback(record)
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = ClientConfig {
        base_url: format!("http://{addr}"),
        ..ClientConfig::default()
    };
    (mock, config)
}

fn work_item(id: &str) -> String {
    json!({
        "type": "work", "id": id, "environment_id": "env_1", "state": "queued",
        "data": {"type": "session", "id": "sesn_1"}, "metadata": {},
        "secret": "abc", "created_at": "2026-05-11T12:00:00Z", "unknown_field": {"x": 1}
    })
    .to_string()
}

const FAST_RETRY: (&str, &str) = ("retry-after-ms", "5");

#[tokio::test]
async fn headers_credentials_beta_helper_and_worker_id() {
    let (mock, mut config) = start().await;
    config.extra_headers = vec![
        ("Authorization".into(), "Bearer parent-key".into()),
        ("X-Api-Key".into(), "sk-parent".into()),
        ("x-stainless-helper".into(), "my-tool".into()),
        ("anthropic-workspace-id".into(), "wrk_1".into()),
    ];
    let poller = Client::new(config, "env-key", Helper::WorkPoller)
        .unwrap()
        .with_worker_id("host-abc");
    mock.reply(200, &[], &work_item("work_1"));
    let item = poller.poll_work("env_1", Some(999), None).await.unwrap();
    assert_eq!(item.unwrap().id, "work_1");
    poller.ack_work("env_1", "work_1").await.unwrap();

    let worker = poller.scoped("sess_tok_1", Helper::Worker).unwrap();
    mock.reply(
        200,
        &[],
        r#"{"type":"skill_version","id":"skillver_9","skill_id":"skill_1","name":"pdf"}"#,
    );
    let version = worker
        .retrieve_skill_version("skill_1", "latest")
        .await
        .unwrap();
    assert_eq!(version.id, "skillver_9");
    let runner = worker
        .scoped("sess_tok_1", Helper::SessionToolRunner)
        .unwrap();
    mock.reply(200, &[], r#"{"data":[],"next_page":null}"#);
    runner.list_events("sesn_1", 1000, None).await.unwrap();

    let seen = mock.seen();
    assert_eq!(seen.len(), 4);
    let [poll, ack, skill, events] = &seen[..] else {
        unreachable!()
    };
    assert_eq!(poll.uri, "/v1/environments/env_1/work/poll?block_ms=999");
    assert_eq!(poll.method, "GET");
    for request in &seen {
        assert_eq!(request.count("authorization"), 1, "{}", request.uri);
        assert!(request.header("x-api-key").is_none());
        assert_eq!(request.header("anthropic-version"), Some("2026-10-21"));
        assert_eq!(request.header("anthropic-workspace-id"), Some("wrk_1"));
        assert_eq!(request.header("accept"), Some("application/json"));
        assert!(request
            .header("user-agent")
            .unwrap()
            .starts_with("sandkeep/"));
    }
    assert_eq!(poll.header("authorization"), Some("Bearer env-key"));
    assert_eq!(ack.header("authorization"), Some("Bearer env-key"));
    assert_eq!(skill.header("authorization"), Some("Bearer sess_tok_1"));
    assert_eq!(
        poll.header("x-stainless-helper"),
        Some("environments-work-poller, my-tool")
    );
    assert_eq!(
        skill.header("x-stainless-helper"),
        Some("environments-worker, my-tool")
    );
    assert_eq!(
        events.header("x-stainless-helper"),
        Some("session-tool-runner, my-tool")
    );
    assert_eq!(poll.header("anthropic-worker-id"), Some("host-abc"));
    assert!(ack.header("anthropic-worker-id").is_none());
    assert!(skill.header("anthropic-worker-id").is_none());
    assert_eq!(
        poll.header("anthropic-beta"),
        Some("managed-agents-2026-04-01")
    );
    assert!(
        skill.header("anthropic-beta").is_none(),
        "no beta on skills"
    );
    assert_eq!(
        events.header("anthropic-beta"),
        Some("managed-agents-2026-04-01")
    );
    assert_eq!(events.uri, "/v1/sessions/sesn_1/events?limit=1000");
    assert_eq!(ack.method, "POST");
    assert!(ack.body.is_empty());
    assert_eq!(ack.header("content-length"), Some("0"));
    assert_eq!(ack.count("content-length"), 1);
    assert_eq!(ack.header("content-type"), Some("application/json"));
    assert!(poll.header("content-type").is_none());
}

#[tokio::test]
async fn helper_none_sends_no_helper_tag() {
    let (mock, config) = start().await;
    let operator = Client::new(config, "sk-ant-api", Helper::None).unwrap();
    operator.get_json("/v1/environments?limit=5").await.unwrap();
    let seen = mock.seen();
    assert!(seen[0].header("x-stainless-helper").is_none());
    assert_eq!(seen[0].uri, "/v1/environments?limit=5");
}

#[tokio::test]
async fn empty_polls_mean_no_work() {
    let (mock, config) = start().await;
    let client = Client::new(config, "env-key", Helper::WorkPoller).unwrap();
    mock.reply(204, &[], "")
        .reply(200, &[("content-type", "application/json")], "null")
        .reply(200, &[], "")
        .reply(200, &[], " \n")
        .reply(200, &[], &work_item("work_7"));
    for _ in 0..4 {
        assert!(client
            .poll_work("env_1", None, None)
            .await
            .unwrap()
            .is_none());
    }
    let item = client
        .poll_work("env_1", Some(1), Some(5000))
        .await
        .unwrap()
        .expect("an item");
    assert_eq!(item.id, "work_7");
    assert_eq!(item.state, WorkState::Queued);
    assert!(item.data.is_session());
    let seen = mock.seen();
    assert_eq!(seen[0].uri, "/v1/environments/env_1/work/poll");
    assert!(seen[0].header("anthropic-worker-id").is_none());
    assert_eq!(
        seen[4].uri,
        "/v1/environments/env_1/work/poll?block_ms=1&reclaim_older_than_ms=5000"
    );
    let zero = client.poll_work("env_1", Some(0), None).await;
    assert!(matches!(zero, Err(ApiError::Config(m)) if m.contains("block_ms=0")));
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let (mock, config) = start().await;
    let client = Client::new(config, "k", Helper::Worker).unwrap();
    mock.reply(500, &[FAST_RETRY], "oops")
        .reply(503, &[FAST_RETRY], "{}")
        .reply(
            200,
            &[],
            r#"{"type":"session","id":"sesn_1","status":"idle"}"#,
        );
    let session = client.retrieve_session("sesn_1").await.unwrap();
    assert_eq!(session.status, "idle");
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn gives_up_after_max_retries_with_the_last_error() {
    let (mock, config) = start().await;
    let client = Client::new(config, "k", Helper::Worker).unwrap();
    for _ in 0..3 {
        mock.reply(
            529,
            &[FAST_RETRY, ("request-id", "req_9")],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
    }
    let err = client.retrieve_session("sesn_1").await.unwrap_err();
    assert_eq!(mock.seen().len(), 3, "1 attempt + 2 retries");
    assert!(err.is_transient());
    match &err {
        ApiError::Status {
            status,
            error_type,
            request_id,
            ..
        } => {
            assert_eq!(*status, 529);
            assert_eq!(error_type.as_deref(), Some("overloaded_error"));
            assert_eq!(request_id.as_deref(), Some("req_9"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn no_retry_on_fatal_4xx_or_when_server_says_no() {
    let (mock, config) = start().await;
    let client = Client::new(config, "bad-key", Helper::WorkPoller).unwrap();
    mock.reply(
        401,
        &[],
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
    );
    let err = client
        .poll_work("env_1", Some(999), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.is_fatal_4xx());
    assert!(err.to_string().contains("authentication_error"));
    assert_eq!(mock.seen().len(), 1);

    mock.reply(409, &[("x-should-retry", "false")], "");
    let err = client.stop_work("env_1", "work_1", true).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.is_transient());
    assert_eq!(mock.seen().len(), 2);
}

#[tokio::test]
async fn heartbeat_query_is_url_encoded() {
    let (mock, config) = start().await;
    let client = Client::new(config, "tok", Helper::Worker).unwrap();
    mock.reply(
        200,
        &[],
        r#"{"type":"work_heartbeat","last_heartbeat":"2026-01-01T00:00:01Z","lease_extended":true,"state":"active","ttl_seconds":60}"#,
    );
    let beat = client
        .heartbeat("env_1", "work_1", NO_HEARTBEAT)
        .await
        .unwrap();
    assert_eq!(beat.last_heartbeat, "2026-01-01T00:00:01Z");
    assert_eq!(beat.state, WorkState::Active);
    mock.reply(
        412,
        &[],
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"mismatch","details":{"error_code":"heartbeat_precondition_failed"}}}"#,
    );
    let err = client
        .heartbeat("env_1", "work_1", &beat.last_heartbeat)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(412));
    assert_eq!(err.error_code(), Some("heartbeat_precondition_failed"));
    assert!(err.is_fatal_4xx());
    let seen = mock.seen();
    assert_eq!(seen.len(), 2, "412 is not retried");
    assert_eq!(
        seen[0].uri,
        "/v1/environments/env_1/work/work_1/heartbeat?expected_last_heartbeat=NO_HEARTBEAT"
    );
    assert_eq!(
        seen[1].uri,
        "/v1/environments/env_1/work/work_1/heartbeat?expected_last_heartbeat=2026-01-01T00%3A00%3A01Z"
    );
    assert_eq!(seen[1].method, "POST");
}

#[tokio::test]
async fn stop_bodies_and_responses() {
    let (mock, config) = start().await;
    let client = Client::new(config, "tok", Helper::Worker).unwrap();
    mock.reply(204, &[], "")
        .reply(200, &[], &work_item("work_1"));
    client.stop_work("env_1", "work_1", true).await.unwrap();
    client.stop_work("env_1", "work 1", false).await.unwrap();
    let seen = mock.seen();
    let body = |i: usize| serde_json::from_slice::<Value>(&seen[i].body).unwrap();
    assert_eq!(body(0), json!({"force": true}));
    assert_eq!(body(1), json!({}));
    assert_eq!(seen[1].uri, "/v1/environments/env_1/work/work%201/stop");
    assert!(matches!(
        client.stop_work("env_1", "", true).await,
        Err(ApiError::Config(_))
    ));
}

#[tokio::test]
async fn work_queue_operator_calls() {
    let (mock, config) = start().await;
    let client = Client::new(config, "sk-ant-api", Helper::None).unwrap();
    mock.reply(
        200,
        &[],
        &format!(
            r#"{{"data":[{}],"next_page":"cur 2"}}"#,
            work_item("work_1")
        ),
    );
    let page = client.list_work("env_1", Some(10), None).await.unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.next_page.as_deref(), Some("cur 2"));
    mock.reply(200, &[], r#"{"data":[]}"#);
    client
        .list_work("env_1", None, page.next_page.as_deref())
        .await
        .unwrap();
    mock.reply(200, &[], &work_item("work_1"));
    client
        .update_work_metadata("env_1", "work_1", json!({"k": "v", "gone": null}))
        .await
        .unwrap();
    mock.reply(
        200,
        &[],
        r#"{"type":"work_queue_stats","depth":2,"pending":0,"oldest_queued_at":null,"workers_polling":1}"#,
    );
    let stats = client.work_stats("env_1").await.unwrap();
    assert_eq!((stats.depth, stats.workers_polling), (2, Some(1)));
    let seen = mock.seen();
    assert_eq!(seen[0].uri, "/v1/environments/env_1/work?limit=10");
    assert_eq!(seen[1].uri, "/v1/environments/env_1/work?page=cur+2");
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[2].body).unwrap(),
        json!({"metadata": {"k": "v", "gone": null}})
    );
    assert_eq!(seen[3].uri, "/v1/environments/env_1/work/stats");
}

#[tokio::test]
async fn malformed_success_body_is_a_decode_error() {
    let (mock, config) = start().await;
    let client = Client::new(config, "k", Helper::Worker).unwrap();
    mock.reply(200, &[], "<html>proxy</html>");
    let err = client.retrieve_session("sesn_1").await.unwrap_err();
    assert!(
        matches!(err, ApiError::Decode { status: 200, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn send_events_posts_the_envelope() {
    let (mock, config) = start().await;
    let client = Client::new(config, "tok", Helper::SessionToolRunner).unwrap();
    mock.reply(200, &[], r#"{"data":[{"id":"sevt_2"}]}"#)
        .reply(200, &[], "");
    let result = json!({"type": "user.tool_result", "tool_use_id": "sevt_1", "content": []});
    let answer = client
        .send_events("sesn_1", std::slice::from_ref(&result))
        .await
        .unwrap();
    assert_eq!(answer["data"][0]["id"], "sevt_2");
    assert_eq!(
        client
            .send_events("sesn_1", std::slice::from_ref(&result))
            .await
            .unwrap(),
        Value::Null
    );
    let seen = mock.seen();
    assert_eq!(seen[0].uri, "/v1/sessions/sesn_1/events");
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[0].body).unwrap(),
        json!({"events": [result]})
    );
}

#[tokio::test]
async fn skill_content_is_streamed_to_a_file() {
    let (mock, config) = start().await;
    let client = Client::new(config, "tok", Helper::Worker).unwrap();
    let archive: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let payload = archive.clone();
    mock.reply(503, &[FAST_RETRY], "busy").then(move || {
        Response::builder()
            .header("content-type", "application/zip")
            .body(Body::from(payload))
            .unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("skill.zip");
    let written = client
        .download_skill_content("skill_1", "skillver_9", &dest)
        .await
        .unwrap();
    assert_eq!(written, archive.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), archive);
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].uri,
        "/v1/skills/skill_1/versions/skillver_9/content"
    );
    assert_eq!(seen[1].header("accept"), Some("application/binary"));
    assert!(seen[1].header("anthropic-beta").is_none());

    mock.reply(
        404,
        &[],
        r#"{"type":"error","error":{"type":"not_found_error","message":"no such skill"}}"#,
    );
    let err = client
        .download_skill_content("skill_x", "v", &dir.path().join("other.zip"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(
        !dir.path().join("other.zip").exists(),
        "no file on HTTP error"
    );
}

fn sse_chunks(chunks: Vec<(u64, &'static str)>) -> Response {
    let stream = futures::stream::unfold(chunks.into_iter(), |mut rest| async move {
        let (delay_ms, text) = rest.next()?;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        Some((
            Ok::<_, std::io::Error>(Bytes::from_static(text.as_bytes())),
            rest,
        ))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

#[tokio::test]
async fn event_stream_has_no_total_timeout_only_an_idle_one() {
    let (mock, mut config) = start().await;
    config.request_timeout = Duration::from_millis(400);
    let client = Client::new(config, "tok", Helper::SessionToolRunner).unwrap();
    mock.reply(502, &[FAST_RETRY], "").then(|| {
        sse_chunks(vec![
            (0, "event: ping\ndata: {}\n\n"),
            (
                250,
                "event: agent.tool_use\ndata: {\"type\":\"agent.tool_use\",",
            ),
            (250, "\"id\":\"sevt_1\"}\n\n: keep-alive\n\n"),
            (
                250,
                "event: session.status_idle\ndata: {\"type\":\"session.status_idle\"}\n\n",
            ),
        ])
    });
    let mut stream = client.stream_events("sesn_1").await.unwrap();
    let first = stream.next_event().await.unwrap().unwrap();
    assert_eq!(first["id"], "sevt_1");
    let second = stream.next_event().await.unwrap().unwrap();
    assert_eq!(second["type"], "session.status_idle");
    assert!(
        stream.next_event().await.is_none(),
        "server closed the stream"
    );
    let seen = mock.seen();
    assert_eq!(seen.len(), 2, "connect retried once");
    assert_eq!(seen[1].uri, "/v1/sessions/sesn_1/events/stream");
    assert_eq!(
        seen[1].header("x-stainless-helper"),
        Some("session-tool-runner")
    );

    // A silent server trips the idle timeout.
    mock.then(|| sse_chunks(vec![(0, "event: a\ndata: {}\n\n"), (3_000, "")]));
    let mut stream = client.stream_events("sesn_1").await.unwrap();
    assert!(stream.next_event().await.unwrap().is_ok());
    let err = stream.next_event().await.unwrap().unwrap_err();
    assert!(
        matches!(err, ApiError::Transport { timeout: true, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(stream.next_event().await.is_none());
}

#[tokio::test]
async fn stream_connect_errors_are_mapped() {
    let (mock, config) = start().await;
    let client = Client::new(config, "tok", Helper::SessionToolRunner).unwrap();
    mock.reply(
        404,
        &[],
        r#"{"type":"error","error":{"type":"not_found_error","message":"gone"}}"#,
    );
    let err = client.stream_events("sesn_x").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.is_fatal_4xx());
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener); // nothing listens here any more
    let config = ClientConfig {
        base_url: format!("http://{addr}"),
        max_retries: 1,
        ..ClientConfig::default()
    };
    let client = Client::new(config, "k", Helper::WorkPoller).unwrap();
    let err = client.poll_work("env_1", None, None).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Transport { timeout: false, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(err
        .to_string()
        .contains("could not reach the control plane"));
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // First connection: read the request, then hang up without answering.
        let (mut first, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = first.read(&mut buf).await.unwrap();
        drop(first);
        let (mut second, _) = listener.accept().await.unwrap();
        let _ = second.read(&mut buf).await.unwrap();
        let body = r#"{"type":"session","id":"sesn_1","status":"running"}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        second.write_all(response.as_bytes()).await.unwrap();
        2
    });
    let config = ClientConfig {
        base_url: format!("http://{addr}"),
        ..ClientConfig::default()
    };
    let client = Client::new(config, "k", Helper::Worker).unwrap();
    let session = client.retrieve_session("sesn_1").await.unwrap();
    assert_eq!(session.status, "running");
    assert_eq!(server.await.unwrap(), 2, "two connections were made");
}
