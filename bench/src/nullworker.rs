//! The round-trip floor: answer each tool call at once, doing no work.

use sandkeep_api::{Client, ClientConfig, Helper};
use serde_json::json;
use std::io::Write;

pub fn run(base_url: &str, key: &str, session: &str) -> anyhow::Result<()> {
    let config = ClientConfig {
        base_url: base_url.to_string(),
        ..ClientConfig::default()
    };
    let client = Client::new(config, key, Helper::SessionToolRunner)?;
    // Same runtime shape as the worker (multi-threaded tokio).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut stream = client.stream_events(session).await?;
        println!("ready");
        std::io::stdout().flush()?;
        while let Some(event) = stream.next_event().await {
            let event = event?;
            match event["type"].as_str() {
                Some("agent.tool_use") => {
                    let result = json!({
                        "type": "user.tool_result",
                        "tool_use_id": event["id"],
                        "is_error": false,
                        "content": [{"type": "text", "text": "ok"}],
                    });
                    client.send_events(session, &[result]).await?;
                }
                Some("session.status_terminated") | Some("session.deleted") => break,
                _ => {}
            }
        }
        Ok(())
    })
}
