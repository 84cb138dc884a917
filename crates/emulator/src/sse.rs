//! `GET /v1/sessions/{id}/events/stream` (§2.5, §11.4): live events only,
//! each as `event: <type>` + `data: <json>`, with periodic `event: ping`.
//! Streams can be dropped by fault injection (now, or after K events).

use crate::state::AppState;
use axum::response::sse::{Event, Sse};
use futures::Stream;
use serde_json::Value;
use std::convert::Infallible;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

/// Builds the SSE response for an already-authorised session. `events` must
/// have been subscribed before the handler returns, so nothing appended after
/// the connection opened is missed.
pub fn stream(
    state: AppState,
    mut events: broadcast::Receiver<Value>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    let mut drops = state.stream_drops.subscribe();
    let ping_every = state.config.ping_interval;
    tokio::spawn(async move {
        let mut sent: u64 = 0;
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        loop {
            let message = tokio::select! {
                _ = tx.closed() => break,
                changed = drops.changed() => {
                    // A drop request (or the emulator going away) ends the stream.
                    let _ = changed;
                    break;
                }
                _ = ping.tick() => Event::default().event("ping").data("{}"),
                received = events.recv() => match received {
                    Ok(event) => {
                        let name = event["type"].as_str().unwrap_or("message").to_string();
                        sent += 1;
                        Event::default().event(name).data(event.to_string())
                    }
                    // A slow reader missed events: close so the client re-lists history.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            };
            if tx.send(Ok(message)).await.is_err() {
                break;
            }
            let limit = state.faults().drop_streams_after_events;
            if limit.is_some_and(|k| sent >= k) {
                break;
            }
        }
    });
    Sse::new(ReceiverStream::new(rx))
}
