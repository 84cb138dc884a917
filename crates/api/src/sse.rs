//! Server-sent-events decoding for the session event stream (§2.5).
//!
//! [`SseParser`] turns arbitrary byte chunks into messages (lines may be split across
//! chunks; LF, CRLF and CR line ends are all accepted). [`EventStream`] applies the
//! protocol's filtering on top: messages without an `event:` line, `ping` messages and
//! named messages with empty data are skipped, `event: error` becomes an error, and every
//! other message yields its JSON `data`.

use crate::error::ApiError;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// One dispatched SSE message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseMessage {
    /// Value of the last `event:` line, if any.
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// Value of the last `id:` line, if any.
    pub id: Option<String>,
}

/// Incremental SSE line parser (WHATWG event-stream rules).
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a leading `\n` of the next chunk belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Vec<String>,
    id: Option<String>,
    /// Whether any field was seen since the last dispatch (empty messages are dropped).
    has_fields: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk and returns the messages it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        let mut out = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(message) = self.process_line(&line) {
                        out.push(message);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        out
    }

    fn process_line(&mut self, raw: &[u8]) -> Option<SseMessage> {
        if raw.is_empty() {
            return self.dispatch();
        }
        let line = String::from_utf8_lossy(raw);
        if line.starts_with(':') {
            return None; // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            // An id containing NUL is ignored by the SSE spec.
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            "retry" => {} // reconnection is driven by the runner, not the server hint
            _ => return None,
        }
        self.has_fields = true;
        None
    }

    fn dispatch(&mut self) -> Option<SseMessage> {
        if !std::mem::take(&mut self.has_fields) {
            return None;
        }
        Some(SseMessage {
            event: self.event.take(),
            data: std::mem::take(&mut self.data).join("\n"),
            id: self.id.take(),
        })
    }
}

/// What a dispatched message means to the session runner.
fn interpret(message: SseMessage) -> Option<Result<Value, ApiError>> {
    let event = message.event?; // 2.10.0 drops messages without an `event:` line
    match event.as_str() {
        "ping" => None,
        "error" => Some(Err(ApiError::Stream(error_event_text(&message.data)))),
        // A named event without data carries nothing to act on (2.10.0 skips it too).
        _ if message.data.is_empty() => None,
        _ => Some(
            serde_json::from_str(&message.data).map_err(|err| ApiError::Decode {
                status: 200,
                message: format!("`{event}` event data is not valid JSON: {err}"),
            }),
        ),
    }
}

/// Prefers the envelope's `error.message`, else the raw data.
fn error_event_text(data: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(data).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
    });
    match message {
        Some(text) => text.to_owned(),
        None if data.trim().is_empty() => "error event without details".to_owned(),
        None => data.to_owned(),
    }
}

/// The session event stream: JSON-parsed `data` of each named event (§2.5).
///
/// Ends (`None`) when the server closes the connection; a transport failure (including
/// 600 s without any byte) yields one `Err(ApiError::Transport)` and then ends. Both mean
/// the caller should reconnect and re-read history.
pub struct EventStream {
    body: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    parser: SseParser,
    ready: VecDeque<SseMessage>,
    finished: bool,
}

impl EventStream {
    pub(crate) fn new(body: BoxStream<'static, Result<Bytes, reqwest::Error>>) -> Self {
        EventStream {
            body,
            parser: SseParser::new(),
            ready: VecDeque::new(),
            finished: false,
        }
    }

    /// Builds a stream from raw chunks; used by tests and by callers replaying captures.
    pub fn from_chunks<S>(chunks: S) -> Self
    where
        S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
    {
        Self::new(chunks.boxed())
    }

    /// The next event, or `None` once the stream has ended.
    pub async fn next_event(&mut self) -> Option<Result<Value, ApiError>> {
        self.next().await
    }
}

impl Stream for EventStream {
    type Item = Result<Value, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            while let Some(message) = this.ready.pop_front() {
                if let Some(item) = interpret(message) {
                    return Poll::Ready(Some(item));
                }
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match ready!(this.body.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => this.ready.extend(this.parser.push(&chunk)),
                Some(Err(err)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(ApiError::transport(&err))));
                }
                // A message not terminated by a blank line is incomplete: discard it.
                None => this.finished = true,
            }
        }
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("buffered", &self.ready.len())
            .field("finished", &self.finished)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseMessage> {
        let mut parser = SseParser::new();
        chunks.iter().flat_map(|c| parser.push(c)).collect()
    }

    fn stream_of(chunks: &[&'static str]) -> EventStream {
        let items: Vec<Result<Bytes, reqwest::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        EventStream::from_chunks(futures::stream::iter(items))
    }

    async fn collect(mut stream: EventStream) -> Vec<Result<Value, ApiError>> {
        let mut out = Vec::new();
        while let Some(item) = stream.next_event().await {
            out.push(item);
        }
        out
    }

    #[test]
    fn splits_across_chunk_boundaries_at_every_offset() {
        let wire =
            b"event: agent.tool_use\ndata: {\"type\":\"agent.tool_use\",\"id\":\"\xc3\xa9\"}\n\n";
        let whole = parse_all(&[wire]);
        assert_eq!(whole.len(), 1);
        for cut in 1..wire.len() {
            let (a, b) = wire.split_at(cut);
            assert_eq!(parse_all(&[a, b]), whole, "cut at {cut}");
        }
        assert_eq!(whole[0].event.as_deref(), Some("agent.tool_use"));
        assert_eq!(whole[0].data, "{\"type\":\"agent.tool_use\",\"id\":\"é\"}");
    }

    #[test]
    fn crlf_cr_multiline_data_and_comments() {
        let messages = parse_all(&[
            b": keep-alive\r\n\r\nevent: a\r\ndata: one\r",
            b"\ndata:two\r\nid: 7\r\n\r\n",
            b"event: b\rdata: x\r\r",
        ]);
        assert_eq!(
            messages,
            vec![
                SseMessage {
                    event: Some("a".into()),
                    data: "one\ntwo".into(),
                    id: Some("7".into())
                },
                SseMessage {
                    event: Some("b".into()),
                    data: "x".into(),
                    id: None
                },
            ]
        );
    }

    #[tokio::test]
    async fn filters_ping_unnamed_and_yields_json() {
        let items = collect(stream_of(&[
            "event: ping\ndata: {}\n\n",
            "data: {\"type\":\"unnamed\"}\n\n",
            "event: agent.message\n\nevent: agent.message\ndata:\n\n",
            ": comment\n\n",
            "event: agent.tool_use\ndata: {\"type\":\"agent.tool_use\",",
            "\"id\":\"sevt_1\"}\n\nevent: session.status_idle\ndata: {\"type\":\"session.status_idle\"}\n\n",
            "event: agent.message\ndata: {\"type\":\"agent.message\"}\n", // never terminated
        ]))
        .await;
        let values: Vec<Value> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            values,
            vec![
                json!({"type": "agent.tool_use", "id": "sevt_1"}),
                json!({"type": "session.status_idle"}),
            ]
        );
    }

    #[tokio::test]
    async fn error_event_and_bad_json_are_transient_errors() {
        let items = collect(stream_of(&[
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
            "event: agent.message\ndata: not json\n\n",
            "event: error\ndata: plain text\n\n",
        ]))
        .await;
        assert_eq!(items.len(), 3);
        match &items[0] {
            Err(err @ ApiError::Stream(text)) => {
                assert_eq!(text, "Overloaded");
                assert!(err.is_transient());
            }
            other => panic!("unexpected {other:?}"),
        }
        match &items[1] {
            Err(err @ ApiError::Decode { status: 200, .. }) => assert!(err.is_transient()),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(&items[2], Err(ApiError::Stream(t)) if t == "plain text"));
    }
}
