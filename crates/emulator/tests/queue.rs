//! Work-queue behaviour over HTTP (§3.4, §3.5, §12.1 cases 19–21).

mod common;

use common::*;
use sandkeep_emulator::{EmulatorConfig, FailRule, Faults};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn lifecycle_heartbeat_cas_and_stop_conflict() {
    let h = start(EmulatorConfig::default()).await;
    let (env, key, agent) = h.setup().await;
    // Empty queue: 200 application/json null (case 19).
    let response = h
        .http
        .get(format!(
            "{}/v1/environments/{env}/work/poll?block_ms=20",
            h.base
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("request-id"));
    assert_eq!(response.text().await.unwrap(), "null");
    // block_ms=0 and 1000 are rejected (case 20).
    for bad in ["0", "1000"] {
        let (status, body) = h
            .call(
                "GET",
                &format!("/v1/environments/{env}/work/poll?block_ms={bad}"),
                &key,
                None,
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    let session = h.session(&env, &agent).await;
    let item = h.poll(&env, &key).await;
    assert_eq!(item["data"], json!({"type": "session", "id": session}));
    assert_eq!(item["state"], "queued");
    let work = item["id"].as_str().unwrap();
    let token = sessions_token(&item);
    let base = format!("/v1/environments/{env}/work/{work}");
    assert_eq!(
        h.ok("POST", &format!("{base}/ack"), &key, None).await["state"],
        "starting"
    );

    let hb = h
        .ok(
            "POST",
            &format!("{base}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT"),
            &token,
            None,
        )
        .await;
    assert_eq!(hb["type"], "work_heartbeat");
    assert_eq!(hb["state"], "active");
    assert_eq!(hb["lease_extended"], true);
    assert_eq!(hb["ttl_seconds"], 300);
    // Stale precondition → 412 with current_state and x-should-retry: false.
    let response = h
        .http
        .post(format!(
            "{}{base}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT",
            h.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 412);
    assert_eq!(response.headers()["x-should-retry"], "false");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["details"]["error_code"],
        "heartbeat_precondition_failed"
    );
    assert_eq!(
        body["error"]["details"]["current_state"]["last_heartbeat"],
        hb["last_heartbeat"]
    );
    // Echoing the exact value (URL-encoded) extends the lease.
    let last = hb["last_heartbeat"]
        .as_str()
        .unwrap()
        .replace(':', "%3A")
        .replace('+', "%2B");
    h.ok(
        "POST",
        &format!("{base}/heartbeat?expected_last_heartbeat={last}"),
        &token,
        None,
    )
    .await;

    // Graceful stop by the operator, heartbeat sees stopping, force stop, then 409.
    assert_eq!(
        h.ok("POST", &format!("{base}/stop"), ADMIN, Some(json!({})))
            .await["state"],
        "stopping"
    );
    let hb = h
        .ok(
            "POST",
            &format!("{base}/heartbeat?expected_last_heartbeat=whatever"),
            &token,
            None,
        )
        .await;
    assert_eq!(hb["state"], "stopping");
    assert_eq!(
        h.ok(
            "POST",
            &format!("{base}/stop"),
            &token,
            Some(json!({"force": true}))
        )
        .await["state"],
        "stopped"
    );
    let (status, body) = h
        .call(
            "POST",
            &format!("{base}/stop"),
            &token,
            Some(json!({"force": true})),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // Retrieve (admin) hides the secret; update merges metadata.
    let got = h.ok("GET", &base, ADMIN, None).await;
    assert_eq!(got["secret"], serde_json::Value::Null);
    assert_eq!(got["state"], "stopped");
    h.ok(
        "POST",
        &base,
        ADMIN,
        Some(json!({"metadata": {"a": "1", "b": "2"}})),
    )
    .await;
    let got = h
        .ok("POST", &base, ADMIN, Some(json!({"metadata": {"a": null}})))
        .await;
    assert_eq!(got["metadata"], json!({"b": "2"}));
}

#[tokio::test]
async fn reclaim_and_lease_expiry_let_another_worker_serve_the_item() {
    let config = EmulatorConfig {
        reclaim_default_ms: 200,
        lease_ttl_seconds: 1,
        ..EmulatorConfig::default()
    };
    let h = start(config).await;
    let (env, key, agent) = h.setup().await;
    h.session(&env, &agent).await;
    let first = h.poll(&env, &key).await;
    assert!(
        h.poll(&env, &key).await.is_null(),
        "a pending item is not handed out twice at once"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let again = h.poll(&env, &key).await;
    assert_eq!(again["id"], first["id"], "case 21: un-acked item reclaimed");
    assert_ne!(again["secret"], first["secret"]);

    let work = first["id"].as_str().unwrap();
    let base = format!("/v1/environments/{env}/work/{work}");
    h.ok("POST", &format!("{base}/ack"), &key, None).await;
    let old_token = sessions_token(&again);
    let hb = h
        .ok(
            "POST",
            &format!("{base}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT"),
            &old_token,
            None,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = h.poll(&env, &key).await;
    assert_eq!(
        third["id"], first["id"],
        "an expired lease re-queues the item"
    );
    h.ok("POST", &format!("{base}/ack"), &key, None).await;
    let new_token = sessions_token(&third);
    h.ok(
        "POST",
        &format!("{base}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT"),
        &new_token,
        None,
    )
    .await;
    let last = hb["last_heartbeat"].as_str().unwrap().replace(':', "%3A");
    let (status, _) = h
        .call(
            "POST",
            &format!("{base}/heartbeat?expected_last_heartbeat={last}"),
            &old_token,
            None,
        )
        .await;
    assert_eq!(status, 412, "the old holder's stale heartbeat fails");
}

#[tokio::test]
async fn stats_list_and_blocking_poll() {
    let h = start(EmulatorConfig::default()).await;
    let (env, key, agent) = h.setup().await;
    h.session(&env, &agent).await;
    h.session(&env, &agent).await;
    let response = h
        .http
        .get(format!(
            "{}/v1/environments/{env}/work/poll?block_ms=999",
            h.base
        ))
        .bearer_auth(&key)
        .header("Anthropic-Worker-ID", "host-abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stats = h
        .ok(
            "GET",
            &format!("/v1/environments/{env}/work/stats"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(stats["type"], "work_queue_stats");
    assert_eq!(
        (stats["depth"].as_u64(), stats["pending"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(stats["workers_polling"], 1);
    assert!(stats["oldest_queued_at"].is_string());
    h.ok(
        "GET",
        &format!("/v1/environments/{env}/work/stats"),
        &key,
        None,
    )
    .await;

    let page = h
        .ok(
            "GET",
            &format!("/v1/environments/{env}/work?limit=1"),
            &key,
            None,
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let next = page["next_page"].as_str().unwrap();
    let page2 = h
        .ok(
            "GET",
            &format!("/v1/environments/{env}/work?limit=1&page={next}"),
            &key,
            None,
        )
        .await;
    assert!(page2["next_page"].is_null());
    assert_ne!(page["data"][0]["id"], page2["data"][0]["id"]);

    // A blocking poll wakes up when work arrives.
    let waiter = {
        let (http, base, key, env) = (h.http.clone(), h.base.clone(), key.clone(), env.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = http.get(format!("{base}/v1/environments/{env}/work/poll?block_ms=999&reclaim_older_than_ms=60000")).bearer_auth(key).send().await.unwrap();
            (
                r.json::<serde_json::Value>().await.unwrap(),
                started.elapsed(),
            )
        })
    };
    let _ = h.poll(&env, &key).await; // drain the remaining queued item first
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.session(&env, &agent).await;
    let (item, waited) = waiter.await.unwrap();
    assert!(
        item.is_object() && waited < Duration::from_millis(900),
        "{item} after {waited:?}"
    );
}

#[tokio::test]
async fn credentials_are_scoped() {
    let h = start(EmulatorConfig::default()).await;
    let (env, key, agent) = h.setup().await;
    let (other_env, other_key, _) = h.setup().await;
    let session = h.session(&env, &agent).await;
    let other_session = h.session(&other_env, &agent).await;
    let (status, body) = h
        .call(
            "GET",
            &format!("/v1/environments/{env}/work/poll"),
            "sk-bogus",
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    assert_eq!(
        h.call(
            "GET",
            &format!("/v1/environments/{env}/work/poll"),
            &other_key,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        h.call("GET", &format!("/v1/environments/{env}/work"), ADMIN, None)
            .await
            .0,
        403,
        "list is env-key only"
    );
    let item = h.poll(&env, &key).await;
    let token = sessions_token(&item);
    let work = item["id"].as_str().unwrap();
    assert_eq!(
        h.call(
            "GET",
            &format!("/v1/environments/{env}/work/{work}"),
            &key,
            None
        )
        .await
        .0,
        403,
        "retrieve is API-key only"
    );
    assert_eq!(
        h.call("GET", &format!("/v1/sessions/{session}"), &token, None)
            .await
            .0,
        200
    );
    assert_eq!(
        h.call("GET", &format!("/v1/sessions/{session}"), &key, None)
            .await
            .0,
        200
    );
    assert_eq!(
        h.call(
            "GET",
            &format!("/v1/sessions/{other_session}"),
            &token,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        h.call("GET", &format!("/v1/sessions/{other_session}"), &key, None)
            .await
            .0,
        403
    );
    assert_eq!(
        h.call("POST", "/v1/sessions", &key, Some(json!({})))
            .await
            .0,
        403
    );
    // X-Api-Key works for the operator.
    let r = h
        .http
        .get(format!("{}/v1/environments", h.base))
        .header("x-api-key", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn injected_failures_and_delays() {
    let h = start(EmulatorConfig::default()).await;
    let (env, key, _) = h.setup().await;
    h.emulator.inject_faults(Faults {
        fail: vec![FailRule {
            method: Some("GET".into()),
            path_prefix: format!("/v1/environments/{env}/work/poll"),
            status: 503,
            count: 2,
        }],
        ..Faults::default()
    });
    let path = format!("/v1/environments/{env}/work/poll");
    assert_eq!(h.call("GET", &path, &key, None).await.0, 503);
    assert_eq!(h.call("GET", &path, &key, None).await.0, 503);
    assert_eq!(h.call("GET", &path, &key, None).await.0, 200);
    h.ok(
        "POST",
        "/v1/emulator/faults",
        ADMIN,
        Some(json!({"delay": [{"path_prefix": path, "delay_ms": 300}]})),
    )
    .await;
    let started = std::time::Instant::now();
    h.ok("GET", &path, &key, None).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let (status, body) = h
        .call(
            "POST",
            "/v1/emulator/faults",
            ADMIN,
            Some(json!({"nope": 1})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn heartbeat_rejection_and_forced_expiry() {
    let h = start(EmulatorConfig::default()).await;
    let (env, key, agent) = h.setup().await;
    h.session(&env, &agent).await;
    let item = h.poll(&env, &key).await;
    let work = item["id"].as_str().unwrap().to_string();
    let base = format!("/v1/environments/{env}/work/{work}");
    h.ok("POST", &format!("{base}/ack"), &key, None).await;
    h.emulator.inject_faults(Faults {
        reject_heartbeats: vec![work.clone()],
        ..Faults::default()
    });
    assert_eq!(
        h.call(
            "POST",
            &format!("{base}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT"),
            &key,
            None
        )
        .await
        .0,
        412
    );
    h.emulator.clear_faults();
    h.ok(
        "POST",
        &format!("{base}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT"),
        &key,
        None,
    )
    .await;
    let expired = h.emulator.inject_faults(Faults {
        expire_leases: vec![work.clone()],
        ..Faults::default()
    });
    assert_eq!(expired, vec![work.clone()]);
    assert_eq!(h.poll(&env, &key).await["id"], work.as_str());
}
