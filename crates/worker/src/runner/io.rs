//! The runner's view of the outside world: the session's event endpoints and the
//! tool host. Traits keep the runner loop testable without a network or sandbox.

use futures::StreamExt;
use sandkeep_api::{ApiError, Client, EventStream, Page};
use sandkeep_sandbox::SessionExecutor;
use sandkeep_tools::ToolOutput;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A failed call, classified as §2.3 does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 4xx other than 408/409/429: retrying cannot help.
    Fatal(String),
    /// Anything else: transport errors, 5xx, 408/409/429, stream `error` events.
    Transient(String),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        if e.is_fatal_4xx() {
            Failure::Fatal(e.to_string())
        } else {
            Failure::Transient(e.to_string())
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Fatal(m) | Failure::Transient(m) => f.write_str(m),
        }
    }
}

/// A live event stream.
pub trait EventSource: Send {
    fn next_event(&mut self) -> impl Future<Output = Option<Result<Value, Failure>>> + Send;
}

/// The session event endpoints the runner uses (§6.1).
pub trait SessionEvents: Clone + Send + Sync + 'static {
    type Stream: EventSource + 'static;
    fn open_stream(&self) -> impl Future<Output = Result<Self::Stream, Failure>> + Send;
    fn list_page(
        &self,
        page: Option<String>,
    ) -> impl Future<Output = Result<Page<Value>, Failure>> + Send;
    /// Post exactly one result event.
    fn send(&self, event: Value) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// Where the session's tools run.
pub trait ToolHost: Send + Sync + 'static {
    fn owns(&self, name: &str) -> bool;
    fn call(
        &self,
        name: &str,
        input: Value,
        timeout: Duration,
    ) -> impl Future<Output = ToolOutput> + Send;
}

/// Page size of history reads (§6.6).
pub const HISTORY_PAGE: u32 = 1000;

/// The control-plane implementation (`session-tool-runner` client).
#[derive(Clone)]
pub struct ApiSession {
    pub client: Client,
    pub session_id: String,
}

pub struct ApiStream(EventStream);

impl EventSource for ApiStream {
    async fn next_event(&mut self) -> Option<Result<Value, Failure>> {
        self.0.next().await.map(|r| r.map_err(Failure::from))
    }
}

impl SessionEvents for ApiSession {
    type Stream = ApiStream;

    async fn open_stream(&self) -> Result<ApiStream, Failure> {
        Ok(ApiStream(
            self.client.stream_events(&self.session_id).await?,
        ))
    }

    async fn list_page(&self, page: Option<String>) -> Result<Page<Value>, Failure> {
        Ok(self
            .client
            .list_events(&self.session_id, HISTORY_PAGE, page.as_deref())
            .await?)
    }

    async fn send(&self, event: Value) -> Result<(), Failure> {
        self.client.send_events(&self.session_id, &[event]).await?;
        Ok(())
    }
}

impl ToolHost for SessionExecutor {
    fn owns(&self, name: &str) -> bool {
        SessionExecutor::owns(self, name)
    }

    async fn call(&self, name: &str, input: Value, timeout: Duration) -> ToolOutput {
        SessionExecutor::call(self, name, input, timeout).await
    }
}

/// Read the whole history, following `next_page` (§6.6 step 2). Any failure
/// discards everything read so far.
pub async fn list_history<A: SessionEvents>(api: &A) -> Result<Vec<Value>, Failure> {
    let mut events = Vec::new();
    let mut page = None;
    loop {
        let batch = api.list_page(page).await?;
        events.extend(batch.data);
        match batch.next_page.filter(|p| !p.is_empty()) {
            Some(next) => page = Some(next),
            None => return Ok(events),
        }
    }
}

/// Share a host between the runner's state (ownership checks) and its calls.
pub fn owner_of<H: ToolHost>(host: &Arc<H>) -> Box<dyn Fn(&str) -> bool + Send + Sync> {
    let host = Arc::clone(host);
    Box::new(move |name| host.owns(name))
}
