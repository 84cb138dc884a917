//! Progress while the session runs, and the readable transcript at the end.

use crate::scenario::Survey;
use sandkeep_api::Client;
use sandkeep_sandbox::Policy;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Every event of the session, following cursors.
pub async fn all_events(client: &Client, session: &str) -> anyhow::Result<Vec<Value>> {
    let mut events = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let batch = client.list_events(session, 1000, page.as_deref()).await?;
        events.extend(batch.data);
        match batch.next_page.filter(|p| !p.is_empty()) {
            Some(next) => page = Some(next),
            None => return Ok(events),
        }
    }
}

/// Print each call and result as it appears, until the scripted agent finishes.
pub async fn follow(
    client: &Client,
    session: &str,
    started: Instant,
    limit: Duration,
) -> anyhow::Result<()> {
    let mut shown = HashSet::new();
    let mut names: HashMap<String, String> = HashMap::new();
    loop {
        for event in all_events(client, session).await? {
            let id = event["id"].as_str().unwrap_or_default().to_string();
            if !shown.insert(id.clone()) {
                continue;
            }
            let at = started.elapsed().as_secs_f64();
            match event["type"].as_str().unwrap_or_default() {
                "agent.tool_use" => {
                    let name = event["name"].as_str().unwrap_or("?").to_string();
                    println!(
                        "  {at:6.2}s  → {name:<5} {}",
                        trim(&compact(&event["input"]), 70)
                    );
                    names.insert(id, name);
                }
                "user.tool_result" => {
                    let name = event["tool_use_id"]
                        .as_str()
                        .and_then(|t| names.get(t))
                        .map_or("?", String::as_str);
                    let mark = if event["is_error"].as_bool().unwrap_or(false) {
                        "✗"
                    } else {
                        "✓"
                    };
                    println!(
                        "  {at:6.2}s  {mark} {name:<5} {}",
                        trim(&first_line(&event["content"]), 70)
                    );
                }
                _ => {}
            }
        }
        let state = client
            .get_json(&format!("/v1/emulator/sessions/{session}/scenario"))
            .await?;
        if state["phase"] == "finished" {
            return Ok(());
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "the scenario did not finish within {}s (phase {})",
                limit.as_secs(),
                state["phase"]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The final transcript: each call with its input, a trimmed result and its timing.
pub fn print(events: &[Value], state: &Value, survey: &Survey, policy: &Policy, elapsed: Duration) {
    let results: HashMap<&str, &Value> = events
        .iter()
        .filter(|e| e["type"] == "user.tool_result")
        .filter_map(|e| Some((e["tool_use_id"].as_str()?, e)))
        .collect();
    println!("\n── transcript ───────────────────────────────────────────────");
    let (mut calls, mut errors) = (0, 0);
    for (n, call) in events
        .iter()
        .filter(|e| e["type"] == "agent.tool_use")
        .enumerate()
    {
        calls += 1;
        let id = call["id"].as_str().unwrap_or_default();
        println!(
            "\n[{}] {} {}",
            n + 1,
            call["name"].as_str().unwrap_or("?"),
            trim(&compact(&call["input"]), 200)
        );
        let Some(result) = results.get(id) else {
            println!("    (no result)");
            continue;
        };
        let is_error = result["is_error"].as_bool().unwrap_or(false);
        errors += usize::from(is_error);
        let took = elapsed_ms(call, result).map_or(String::new(), |ms| format!("{ms:.1} ms"));
        println!("    {} {took}", if is_error { "error" } else { "ok" });
        for line in render(&result["content"]) {
            println!("    │ {line}");
        }
    }
    println!("\n── summary ──────────────────────────────────────────────────");
    println!(
        "  isolation      {:?} (network {})",
        policy.isolation,
        policy.network_label()
    );
    println!(
        "  workspace      {} lines of .{} source, manifest {}",
        survey.source_lines, survey.source_ext, survey.manifest
    );
    println!("  tool calls     {calls} ({errors} errors)");
    let checks = state["results"].as_array().map_or(0, Vec::len);
    let failures: Vec<&str> = state["failures"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    println!(
        "  expectations   {}/{checks} held",
        checks - failures.len().min(checks)
    );
    for f in &failures {
        println!("    ✗ {f}");
    }
    println!("  wall time      {:.2}s", elapsed.as_secs_f64());
    let passed = state["passed"].as_bool().unwrap_or(false);
    println!(
        "\n{}",
        if passed {
            "demo passed: every expectation held"
        } else {
            "demo FAILED"
        }
    );
}

fn elapsed_ms(call: &Value, result: &Value) -> Option<f64> {
    let parse = |v: &Value| OffsetDateTime::parse(v["processed_at"].as_str()?, &Rfc3339).ok();
    let d = parse(result)? - parse(call)?;
    Some(d.as_seconds_f64() * 1000.0)
}

/// Up to 8 lines of a result, each at most 100 characters; images summarised.
fn render(content: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for block in content.as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => lines.extend(
                block["text"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .map(|l| trim(l, 100)),
            ),
            Some(kind) => lines.push(format!(
                "[{kind} {}, {} bytes of base64]",
                block["source"]["media_type"].as_str().unwrap_or("?"),
                block["source"]["data"].as_str().map_or(0, str::len)
            )),
            None => {}
        }
    }
    if lines.len() > 8 {
        let more = lines.len() - 8;
        lines.truncate(8);
        lines.push(format!("… ({more} more lines)"));
    }
    lines
}

fn first_line(content: &Value) -> String {
    render(content).into_iter().next().unwrap_or_default()
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn trim(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn render_trims_and_summarises_images() {
        let text = (1..=12)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let lines = render(&json!([{"type": "text", "text": text}]));
        assert_eq!(lines.len(), 9);
        assert_eq!(lines[8], "… (4 more lines)");
        let img = render(
            &json!([{"type": "image", "source": {"media_type": "image/png", "data": "AAAA"}}]),
        );
        assert_eq!(img, vec!["[image image/png, 4 bytes of base64]"]);
    }

    #[test]
    fn timing_comes_from_processed_at() {
        let call = json!({"processed_at": "2026-01-01T00:00:00Z"});
        let result = json!({"processed_at": "2026-01-01T00:00:00.250Z"});
        assert_eq!(elapsed_ms(&call, &result), Some(250.0));
    }
}
