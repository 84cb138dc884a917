//! The stream reader task (§6.6): open the stream, read the full history, then
//! forward live events; reconnect with backoff when the stream drops.
//!
//! It runs apart from the dispatcher so that the stream keeps being consumed
//! (and a termination or idle noticed) while a tool call executes.

use super::io::{list_history, EventSource, Failure, SessionEvents};
use crate::backoff::Reconnect;
use serde_json::Value;
use tokio::sync::mpsc;

/// What the reader hands the dispatcher.
#[derive(Debug)]
pub enum Feed {
    /// A complete history listing (after every (re)connect).
    History(Vec<Value>),
    /// The listing failed part-way; nothing of it may be used.
    HistoryFailed,
    Live(Value),
    /// A fatal 4xx on connect or mid-stream: the runner must stop.
    Rejected(String),
}

/// Run until the stream is rejected or the dispatcher goes away.
pub async fn read_events<A: SessionEvents>(api: A, feed: mpsc::Sender<Feed>) {
    let mut backoff = Reconnect::new();
    loop {
        match api.open_stream().await {
            Err(Failure::Fatal(why)) => {
                let _ = feed.send(Feed::Rejected(why)).await;
                return;
            }
            Err(Failure::Transient(why)) => {
                tracing::warn!(error = %why, "cannot open the session event stream; retrying");
            }
            Ok(mut stream) => {
                let history = match list_history(&api).await {
                    Ok(events) => Feed::History(events),
                    Err(why) => {
                        tracing::warn!(error = %why, "reading the session history failed; dispatching nothing from it");
                        Feed::HistoryFailed
                    }
                };
                if feed.send(history).await.is_err() {
                    return;
                }
                loop {
                    match stream.next_event().await {
                        Some(Ok(event)) => {
                            backoff.reset();
                            if feed.send(Feed::Live(event)).await.is_err() {
                                return;
                            }
                        }
                        Some(Err(Failure::Fatal(why))) => {
                            let _ = feed.send(Feed::Rejected(why)).await;
                            return;
                        }
                        Some(Err(Failure::Transient(why))) => {
                            tracing::warn!(error = %why, "session event stream failed; reconnecting");
                            break;
                        }
                        None => {
                            tracing::debug!("session event stream closed; reconnecting");
                            break;
                        }
                    }
                }
            }
        }
        if feed.is_closed() {
            return;
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}
