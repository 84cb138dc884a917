//! The per-environment work queue and lease rules (§3.3–§3.5), as pure
//! operations on the [`Store`]. Handlers lock the store, call one of these,
//! and serialise the result.

use crate::error::ApiError;
use crate::ids;
use crate::state::{SessionsTokenScope, Store, WorkRecord};
use axum::http::StatusCode;
use base64::Engine;
use sandkeep_api::types::{Heartbeat, WorkData, WorkItem, WorkQueueStats, WorkState, NO_HEARTBEAT};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a poll with `Anthropic-Worker-ID` counts in `workers_polling`.
const WORKER_WINDOW: Duration = Duration::from_secs(30);

/// Adds a queued item for `data` to the environment; returns its id.
pub fn enqueue(store: &mut Store, environment_id: &str, data: WorkData) -> String {
    let id = ids::new_id("work");
    store.work.push(WorkRecord {
        item: WorkItem {
            kind: "work".into(),
            id: id.clone(),
            environment_id: environment_id.to_string(),
            state: WorkState::Queued,
            data,
            metadata: BTreeMap::new(),
            secret: None,
            created_at: Some(ids::now()),
            acknowledged_at: None,
            started_at: None,
            latest_heartbeat_at: None,
            stop_requested_at: None,
            stopped_at: None,
        },
        polled_at: None,
        last_heartbeat: None,
        lease_expires: None,
    });
    id
}

/// Puts an item whose lease ran out back in the queue (§3.5 item 4). The
/// stored `last_heartbeat` is cleared, so the old holder's next heartbeat
/// fails its compare-and-set with 412 while a new holder may claim it.
fn requeue(record: &mut WorkRecord) {
    record.item.state = WorkState::Queued;
    record.item.acknowledged_at = None;
    record.item.started_at = None;
    record.polled_at = None;
    record.last_heartbeat = None;
    record.lease_expires = None;
}

/// Re-queues every held item whose lease has expired.
pub fn expire_leases(store: &mut Store, now: Instant) {
    for record in &mut store.work {
        let held = matches!(record.item.state, WorkState::Starting | WorkState::Active);
        if held && record.lease_expires.is_some_and(|at| at <= now) {
            requeue(record);
        }
    }
}

/// Expires one item's lease now (fault injection). Unknown ids are ignored.
pub fn force_expire(store: &mut Store, work_id: &str) -> bool {
    match store.work.iter_mut().find(|w| w.item.id == work_id) {
        Some(record) if matches!(record.item.state, WorkState::Starting | WorkState::Active) => {
            requeue(record);
            true
        }
        _ => false,
    }
}

/// Claims the oldest claimable item (§3.5 item 1) and mints a fresh secret.
pub fn claim(
    store: &mut Store,
    environment_id: &str,
    reclaim_older_than: Duration,
    now: Instant,
) -> Option<WorkItem> {
    expire_leases(store, now);
    let record = store.work.iter_mut().find(|w| {
        w.item.environment_id == environment_id
            && w.item.state == WorkState::Queued
            && w.polled_at
                .is_none_or(|at| now.duration_since(at) >= reclaim_older_than)
    })?;
    record.polled_at = Some(now);
    let token = ids::new_token("sk-emu-sess");
    let payload = json!({"sessions_token": token}).to_string();
    let mut item = record.item.clone();
    item.secret = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload));
    store.sessions_tokens.insert(
        token,
        SessionsTokenScope {
            session_id: item.data.id.clone(),
            work_id: item.id.clone(),
        },
    );
    Some(item)
}

/// Records a poll by `worker_id` for the stats window.
pub fn note_worker(store: &mut Store, environment_id: &str, worker_id: &str, now: Instant) {
    store
        .workers
        .insert(worker_id.to_string(), (environment_id.to_string(), now));
}

fn find<'a>(
    store: &'a mut Store,
    environment_id: &str,
    work_id: &str,
) -> Result<&'a mut WorkRecord, ApiError> {
    store
        .work_mut(environment_id, work_id)
        .ok_or_else(|| ApiError::not_found("work item", work_id))
}

/// Ack: queued/pending → `starting`; the lease clock starts now.
pub fn ack(
    store: &mut Store,
    environment_id: &str,
    work_id: &str,
    ttl: Duration,
    now: Instant,
) -> Result<WorkItem, ApiError> {
    expire_leases(store, now);
    let record = find(store, environment_id, work_id)?;
    if record.item.state != WorkState::Queued {
        return Err(ApiError::conflict(format!(
            "work item {work_id} is {} and cannot be acknowledged",
            state_name(record.item.state)
        )));
    }
    record.item.state = WorkState::Starting;
    record.item.acknowledged_at = Some(ids::now());
    record.polled_at = None;
    record.lease_expires = Some(now + ttl);
    Ok(record.item.clone())
}

fn state_name(state: WorkState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn precondition_failed(record: &WorkRecord, ttl_seconds: i64) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "invalid_request_error",
        "expected_last_heartbeat does not match",
    )
    .with_details(json!({
        "error_code": "heartbeat_precondition_failed",
        "current_state": {
            "last_heartbeat": record.last_heartbeat,
            "lease_extended": false,
            "state": record.item.state,
            "ttl_seconds": ttl_seconds,
        }
    }))
}

/// Heartbeat compare-and-set (§3.4.2, §3.5 item 3).
pub fn heartbeat(
    store: &mut Store,
    environment_id: &str,
    work_id: &str,
    expected: Option<&str>,
    ttl: Duration,
    force_412: bool,
    now: Instant,
) -> Result<Heartbeat, ApiError> {
    expire_leases(store, now);
    let ttl_seconds = ttl.as_secs() as i64;
    let record = find(store, environment_id, work_id)?;
    if record.item.state.is_stopping() {
        return Ok(Heartbeat {
            kind: "work_heartbeat".into(),
            last_heartbeat: record.last_heartbeat.clone().unwrap_or_default(),
            lease_extended: false,
            state: record.item.state,
            ttl_seconds,
        });
    }
    let expected = expected.unwrap_or(NO_HEARTBEAT);
    let current = record.last_heartbeat.as_deref().unwrap_or(NO_HEARTBEAT);
    let held = matches!(record.item.state, WorkState::Starting | WorkState::Active);
    if force_412 || !held || expected != current {
        return Err(precondition_failed(record, ttl_seconds));
    }
    let stamp = ids::now();
    record.last_heartbeat = Some(stamp.clone());
    record.item.latest_heartbeat_at = Some(stamp.clone());
    if record.item.state == WorkState::Starting {
        record.item.state = WorkState::Active;
        record.item.started_at = Some(stamp.clone());
    }
    record.lease_expires = Some(now + ttl);
    Ok(Heartbeat {
        kind: "work_heartbeat".into(),
        last_heartbeat: stamp,
        lease_extended: true,
        state: record.item.state,
        ttl_seconds,
    })
}

/// Stop (§3.4.3): 409 when already stopped; `force` → stopped, else stopping.
pub fn stop(
    store: &mut Store,
    environment_id: &str,
    work_id: &str,
    force: bool,
) -> Result<WorkItem, ApiError> {
    let record = find(store, environment_id, work_id)?;
    if record.item.state == WorkState::Stopped {
        return Err(ApiError::conflict(format!(
            "work item {work_id} is already stopped"
        )));
    }
    let stamp = ids::now();
    if force || record.item.state == WorkState::Queued {
        // An unclaimed item has no worker to confirm a graceful stop.
        record.item.state = WorkState::Stopped;
        record.item.stopped_at = Some(stamp);
        record.polled_at = None;
        record.lease_expires = None;
    } else {
        record.item.state = WorkState::Stopping;
        record.item.stop_requested_at = Some(stamp);
    }
    Ok(record.item.clone())
}

/// Metadata merge patch (§3.4.4): strings upsert, `null` deletes.
pub fn update_metadata(
    store: &mut Store,
    environment_id: &str,
    work_id: &str,
    patch: &serde_json::Map<String, serde_json::Value>,
) -> Result<WorkItem, ApiError> {
    for (key, value) in patch {
        if !(value.is_string() || value.is_null()) {
            return Err(ApiError::bad_request(format!(
                "metadata.{key} must be a string (to set it) or null (to delete it)"
            )));
        }
    }
    let record = find(store, environment_id, work_id)?;
    for (key, value) in patch {
        match value.as_str() {
            Some(v) => {
                record.item.metadata.insert(key.clone(), v.to_string());
            }
            None => {
                record.item.metadata.remove(key);
            }
        }
    }
    Ok(record.item.clone())
}

/// Queue statistics (§3.4.5).
pub fn stats(
    store: &mut Store,
    environment_id: &str,
    reclaim_older_than: Duration,
    now: Instant,
) -> WorkQueueStats {
    expire_leases(store, now);
    let waiting: Vec<&WorkRecord> = store
        .work
        .iter()
        .filter(|w| w.item.environment_id == environment_id && w.item.state == WorkState::Queued)
        .collect();
    let pending = waiting
        .iter()
        .filter(|w| {
            w.polled_at
                .is_some_and(|at| now.duration_since(at) < reclaim_older_than)
        })
        .count() as u64;
    let workers = store
        .workers
        .values()
        .filter(|(env, at)| env == environment_id && now.duration_since(*at) <= WORKER_WINDOW)
        .count() as u64;
    WorkQueueStats {
        kind: "work_queue_stats".into(),
        depth: waiting.len() as u64 - pending,
        pending,
        oldest_queued_at: waiting.first().and_then(|w| w.item.created_at.clone()),
        workers_polling: Some(workers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);
    const RECLAIM: Duration = Duration::from_millis(5000);

    fn session_data(id: &str) -> WorkData {
        WorkData {
            kind: "session".into(),
            id: id.into(),
        }
    }

    #[test]
    fn claim_ack_heartbeat_stop_lifecycle() {
        let mut store = Store::default();
        let now = Instant::now();
        let id = enqueue(&mut store, "env_a", session_data("sesn_1"));
        assert!(
            claim(&mut store, "env_b", RECLAIM, now).is_none(),
            "other environment"
        );
        let item = claim(&mut store, "env_a", RECLAIM, now).unwrap();
        assert_eq!(item.id, id);
        assert!(item.secret.is_some());
        assert!(
            claim(&mut store, "env_a", RECLAIM, now).is_none(),
            "pending item is not reclaimed early"
        );
        assert_eq!(
            ack(&mut store, "env_a", &id, TTL, now).unwrap().state,
            WorkState::Starting
        );
        let hb = heartbeat(
            &mut store,
            "env_a",
            &id,
            Some(NO_HEARTBEAT),
            TTL,
            false,
            now,
        )
        .unwrap();
        assert_eq!(hb.state, WorkState::Active);
        assert!(hb.lease_extended);
        let err = heartbeat(
            &mut store,
            "env_a",
            &id,
            Some(NO_HEARTBEAT),
            TTL,
            false,
            now,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::PRECONDITION_FAILED);
        let hb2 = heartbeat(
            &mut store,
            "env_a",
            &id,
            Some(&hb.last_heartbeat),
            TTL,
            false,
            now,
        )
        .unwrap();
        assert_eq!(hb2.state, WorkState::Active);
        assert_eq!(
            stop(&mut store, "env_a", &id, false).unwrap().state,
            WorkState::Stopping
        );
        let hb3 = heartbeat(&mut store, "env_a", &id, Some("anything"), TTL, false, now).unwrap();
        assert_eq!(hb3.state, WorkState::Stopping);
        assert_eq!(
            stop(&mut store, "env_a", &id, true).unwrap().state,
            WorkState::Stopped
        );
        assert_eq!(
            stop(&mut store, "env_a", &id, true).unwrap_err().status,
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn unacked_items_are_reclaimed_after_the_window() {
        let mut store = Store::default();
        let now = Instant::now();
        enqueue(&mut store, "env_a", session_data("sesn_1"));
        let first = claim(&mut store, "env_a", RECLAIM, now).unwrap();
        let stats = stats(&mut store, "env_a", RECLAIM, now);
        assert_eq!((stats.depth, stats.pending), (0, 1));
        let later = now + Duration::from_millis(5001);
        let again = claim(&mut store, "env_a", RECLAIM, later).unwrap();
        assert_eq!(first.id, again.id);
        assert_ne!(first.secret, again.secret, "secrets are fresh per poll");
    }

    #[test]
    fn expired_lease_requeues_and_stale_heartbeat_gets_412() {
        let mut store = Store::default();
        let now = Instant::now();
        let id = enqueue(&mut store, "env_a", session_data("sesn_1"));
        claim(&mut store, "env_a", RECLAIM, now).unwrap();
        ack(&mut store, "env_a", &id, TTL, now).unwrap();
        let hb = heartbeat(&mut store, "env_a", &id, None, TTL, false, now).unwrap();
        let later = now + TTL + Duration::from_secs(1);
        let reclaimed = claim(&mut store, "env_a", RECLAIM, later).unwrap();
        assert_eq!(reclaimed.id, id);
        let err = heartbeat(
            &mut store,
            "env_a",
            &id,
            Some(&hb.last_heartbeat),
            TTL,
            false,
            later,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::PRECONDITION_FAILED);
        let details = err.details.unwrap();
        assert_eq!(details["error_code"], "heartbeat_precondition_failed");
        assert_eq!(details["current_state"]["state"], "queued");
        ack(&mut store, "env_a", &id, TTL, later).unwrap();
        assert!(heartbeat(
            &mut store,
            "env_a",
            &id,
            Some(NO_HEARTBEAT),
            TTL,
            false,
            later
        )
        .is_ok());
    }

    #[test]
    fn metadata_merge_patch() {
        let mut store = Store::default();
        let id = enqueue(&mut store, "env_a", session_data("sesn_1"));
        let patch = json!({"a": "1", "b": "2"});
        update_metadata(&mut store, "env_a", &id, patch.as_object().unwrap()).unwrap();
        let patch = json!({"a": null, "c": "3"});
        let item = update_metadata(&mut store, "env_a", &id, patch.as_object().unwrap()).unwrap();
        assert_eq!(item.metadata.keys().collect::<Vec<_>>(), vec!["b", "c"]);
        let bad = json!({"a": 1});
        assert!(update_metadata(&mut store, "env_a", &id, bad.as_object().unwrap()).is_err());
    }
}
