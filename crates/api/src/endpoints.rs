//! Typed endpoint methods: work queue (§3.4), sessions and events (§6.1), skills (§7.1)
//! and generic JSON calls for operator/admin endpoints.

use crate::client::{Call, Client, BINARY, JSON};
use crate::error::ApiError;
use crate::sse::EventStream;
use crate::types::{Heartbeat, Page, Session, SkillVersion, WorkItem, WorkQueueStats};
use bytes::Bytes;
use futures::StreamExt;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Highest `block_ms` the server accepts (§3.4.1).
const MAX_BLOCK_MS: u32 = 999;

impl Client {
    // ---- §3 work queue -------------------------------------------------------------

    /// Claims the next work item. `200 null`, `200` with an empty body, `204` and an item
    /// with an empty `id` all mean "no work" (`Ok(None)`). `block_ms` must be 1–999;
    /// omit it for a non-blocking poll.
    pub async fn poll_work(
        &self,
        env: &str,
        block_ms: Option<u32>,
        reclaim_older_than_ms: Option<u64>,
    ) -> Result<Option<WorkItem>, ApiError> {
        require_id("environment id", env)?;
        if let Some(ms) = block_ms.filter(|ms| !(1..=MAX_BLOCK_MS).contains(ms)) {
            return Err(ApiError::Config(format!(
                "block_ms={ms} is out of range; use 1–{MAX_BLOCK_MS} or omit it for a non-blocking poll"
            )));
        }
        let mut query = Vec::new();
        if let Some(ms) = block_ms {
            query.push(("block_ms", ms.to_string()));
        }
        if let Some(ms) = reclaim_older_than_ms {
            query.push(("reclaim_older_than_ms", ms.to_string()));
        }
        let url = self.url(&["v1", "environments", env, "work", "poll"], &query);
        let (status, body) = self
            .execute(&Call {
                worker_id: true,
                ..get(url)
            })
            .await?;
        if status == 204 || is_blank(&body) {
            return Ok(None);
        }
        let item: Option<WorkItem> = decode(status, &body)?;
        Ok(item.filter(|item| !item.id.is_empty()))
    }

    /// Acknowledges a claimed item. Sends no body; the response body is ignored.
    pub async fn ack_work(&self, env: &str, work: &str) -> Result<(), ApiError> {
        let url = self.work_url(env, work, Some("ack"), &[])?;
        self.execute(&post(url, Bytes::new())).await?;
        Ok(())
    }

    /// Extends the lease. `expected_last_heartbeat` is [`crate::NO_HEARTBEAT`] first, then
    /// the previous response's `last_heartbeat` verbatim. 412 means the lease was lost.
    pub async fn heartbeat(
        &self,
        env: &str,
        work: &str,
        expected_last_heartbeat: &str,
    ) -> Result<Heartbeat, ApiError> {
        let query = [(
            "expected_last_heartbeat",
            expected_last_heartbeat.to_owned(),
        )];
        let url = self.work_url(env, work, Some("heartbeat"), &query)?;
        let (status, body) = self.execute(&post(url, Bytes::new())).await?;
        decode(status, &body)
    }

    /// Stops an item: body `{"force": true}` or `{}`. Any success status/body is accepted
    /// (production answers 204). A 409 ("already stopped") is returned as an error; the
    /// caller decides whether to swallow it.
    pub async fn stop_work(&self, env: &str, work: &str, force: bool) -> Result<(), ApiError> {
        let url = self.work_url(env, work, Some("stop"), &[])?;
        let body = if force {
            json!({"force": true})
        } else {
            json!({})
        };
        self.execute(&post(url, Bytes::from(body.to_string())))
            .await?;
        Ok(())
    }

    /// Lists the environment's work items (environment key only).
    pub async fn list_work(
        &self,
        env: &str,
        limit: Option<u32>,
        page: Option<&str>,
    ) -> Result<Page<WorkItem>, ApiError> {
        require_id("environment id", env)?;
        let query = page_query(limit, page);
        let url = self.url(&["v1", "environments", env, "work"], &query);
        self.get_decoded(url).await
    }

    /// Retrieves one work item (API key only; `secret` is null).
    pub async fn retrieve_work(&self, env: &str, work: &str) -> Result<WorkItem, ApiError> {
        let url = self.work_url(env, work, None, &[])?;
        self.get_decoded(url).await
    }

    /// Merge-patches metadata: a string value upserts a key, `null` deletes it.
    pub async fn update_work_metadata(
        &self,
        env: &str,
        work: &str,
        metadata: Value,
    ) -> Result<WorkItem, ApiError> {
        let url = self.work_url(env, work, None, &[])?;
        let body = json!({ "metadata": metadata });
        let (status, body) = self
            .execute(&post(url, Bytes::from(body.to_string())))
            .await?;
        decode(status, &body)
    }

    /// Queue depth, pending count and polling workers (§3.4.5).
    pub async fn work_stats(&self, env: &str) -> Result<WorkQueueStats, ApiError> {
        require_id("environment id", env)?;
        let url = self.url(&["v1", "environments", env, "work", "stats"], &[]);
        self.get_decoded(url).await
    }

    // ---- §6 sessions -----------------------------------------------------------------

    pub async fn retrieve_session(&self, session: &str) -> Result<Session, ApiError> {
        require_id("session id", session)?;
        let url = self.url(&["v1", "sessions", session], &[]);
        self.get_decoded(url).await
    }

    /// One page of the session's event history (oldest first).
    pub async fn list_events(
        &self,
        session: &str,
        limit: u32,
        page: Option<&str>,
    ) -> Result<Page<Value>, ApiError> {
        require_id("session id", session)?;
        let query = page_query(Some(limit), page);
        let url = self.url(&["v1", "sessions", session, "events"], &query);
        self.get_decoded(url).await
    }

    /// Opens the live event stream. Connecting is retried like any call; once open, the
    /// stream has no total timeout, only `request_timeout` of silence between bytes.
    pub async fn stream_events(&self, session: &str) -> Result<EventStream, ApiError> {
        require_id("session id", session)?;
        let url = self.url(&["v1", "sessions", session, "events", "stream"], &[]);
        let response = self.open(&get(url)).await?;
        Ok(EventStream::new(response.bytes_stream().boxed()))
    }

    /// Posts events (`{"events": [...]}`); returns the response body (`Null` if empty).
    pub async fn send_events(&self, session: &str, events: &[Value]) -> Result<Value, ApiError> {
        require_id("session id", session)?;
        let url = self.url(&["v1", "sessions", session, "events"], &[]);
        let body = json!({ "events": events });
        let (status, body) = self
            .execute(&post(url, Bytes::from(body.to_string())))
            .await?;
        decode_or_null(status, &body)
    }

    // ---- §7 skills (no beta header) --------------------------------------------------

    /// Resolves a version (or the alias `latest`) to concrete version metadata.
    pub async fn retrieve_skill_version(
        &self,
        skill_id: &str,
        version: &str,
    ) -> Result<SkillVersion, ApiError> {
        require_id("skill id", skill_id)?;
        require_id("skill version", version)?;
        let url = self.url(&["v1", "skills", skill_id, "versions", version], &[]);
        let (status, body) = self
            .execute(&Call {
                beta: false,
                ..get(url)
            })
            .await?;
        decode(status, &body)
    }

    /// Streams a skill archive into `dest` (created or truncated) and returns its size.
    ///
    /// The request is retried like any call; a failure while receiving or writing the
    /// body is reported as [`ApiError::Transport`] and leaves a partial file behind for
    /// the caller to discard.
    pub async fn download_skill_content(
        &self,
        skill_id: &str,
        version_id: &str,
        dest: &Path,
    ) -> Result<u64, ApiError> {
        require_id("skill id", skill_id)?;
        require_id("skill version id", version_id)?;
        let segments = ["v1", "skills", skill_id, "versions", version_id, "content"];
        let call = Call {
            beta: false,
            accept: BINARY,
            ..get(self.url(&segments, &[]))
        };
        let response = self.open(&call).await?;
        let write_error = |err: std::io::Error| ApiError::Transport {
            message: format!(
                "could not write the skill archive to {}: {err}",
                dest.display()
            ),
            timeout: false,
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(write_error)?;
        let mut body = response.bytes_stream();
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| ApiError::transport(&err))?;
            file.write_all(&chunk).await.map_err(write_error)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(write_error)?;
        Ok(written)
    }

    // ---- generic operator/admin calls ------------------------------------------------

    /// `GET path?query` (path starts with `/`); an empty body yields `Null`.
    pub async fn get_json(&self, path_and_query: &str) -> Result<Value, ApiError> {
        let url = self.raw_url(path_and_query)?;
        let (status, body) = self.execute(&get(url)).await?;
        decode_or_null(status, &body)
    }

    /// `POST path` with a JSON body; an empty response body yields `Null`.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let url = self.raw_url(path)?;
        let (status, body) = self
            .execute(&post(url, Bytes::from(body.to_string())))
            .await?;
        decode_or_null(status, &body)
    }

    /// `DELETE path`; an empty response body yields `Null`.
    pub async fn delete(&self, path: &str) -> Result<Value, ApiError> {
        let url = self.raw_url(path)?;
        let call = Call {
            method: Method::DELETE,
            ..get(url)
        };
        let (status, body) = self.execute(&call).await?;
        decode_or_null(status, &body)
    }

    // ---- helpers -----------------------------------------------------------------------

    fn work_url(
        &self,
        env: &str,
        work: &str,
        action: Option<&str>,
        query: &[(&str, String)],
    ) -> Result<url::Url, ApiError> {
        require_id("environment id", env)?;
        require_id("work id", work)?;
        let mut segments = vec!["v1", "environments", env, "work", work];
        segments.extend(action);
        Ok(self.url(&segments, query))
    }

    async fn get_decoded<T: DeserializeOwned>(&self, url: url::Url) -> Result<T, ApiError> {
        let (status, body) = self.execute(&get(url)).await?;
        decode(status, &body)
    }
}

fn get(url: url::Url) -> Call {
    Call {
        method: Method::GET,
        url,
        beta: true,
        accept: JSON,
        body: None,
        worker_id: false,
    }
}

fn post(url: url::Url, body: Bytes) -> Call {
    Call {
        method: Method::POST,
        body: Some(body),
        ..get(url)
    }
}

fn page_query(limit: Option<u32>, page: Option<&str>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(page) = page.filter(|p| !p.is_empty()) {
        query.push(("page", page.to_owned()));
    }
    query
}

/// Empty ids would silently address a different endpoint (`…/work//ack`).
fn require_id(what: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::Config(format!("the {what} is empty")));
    }
    Ok(())
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn decode<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| ApiError::Decode {
        status,
        message: if is_blank(body) {
            "the response body is empty".to_owned()
        } else {
            format!("unexpected JSON: {err}")
        },
    })
}

fn decode_or_null(status: u16, body: &[u8]) -> Result<Value, ApiError> {
    if is_blank(body) {
        return Ok(Value::Null);
    }
    decode(status, body)
}
