//! Building result events from tool outputs (protocol.md §6.4).

use super::state::{CallKind, ToolCall};
use sandkeep_tools::ToolOutput;
use serde_json::{json, Map, Value};

const NO_OUTPUT: &str = "(no output)";

/// The `user.tool_result` / `user.custom_tool_result` event answering `call`.
pub fn result_event(call: &ToolCall, output: &ToolOutput) -> Value {
    let (kind, id_key) = match call.kind {
        CallKind::Builtin => ("user.tool_result", "tool_use_id"),
        CallKind::Custom => ("user.custom_tool_result", "custom_tool_use_id"),
    };
    let (is_error, content) = if output.deadline_exceeded {
        let text = format!(
            "tool {} timed out",
            sandkeep_tools::pyrepr::repr(&call.name)
        );
        (true, vec![text_block(&text)])
    } else {
        (output.is_error, session_content(&output.content))
    };
    // Key order as the SDK sends it: type, id key, is_error, content.
    let mut event = Map::new();
    event.insert("type".into(), json!(kind));
    event.insert(id_key.into(), json!(call.id));
    event.insert("is_error".into(), json!(is_error));
    event.insert("content".into(), Value::Array(content));
    Value::Object(event)
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": if text.is_empty() { NO_OUTPUT } else { text }})
}

/// Convert tool blocks to session content: text re-emitted, image/document/
/// search_result passed through, anything else stringified; never empty.
pub fn session_content(blocks: &[Value]) -> Vec<Value> {
    let converted: Vec<Value> = blocks
        .iter()
        .map(|block| match block.get("type").and_then(Value::as_str) {
            Some("text") => text_block(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("image" | "document" | "search_result") => block.clone(),
            _ => text_block(&python_json_dumps(block)),
        })
        .collect();
    if converted.is_empty() {
        vec![text_block("")]
    } else {
        converted
    }
}

/// JSON in Python `json.dumps` default style: `", "` / `": "` separators and
/// non-ASCII escaped as `\uXXXX`.
pub fn python_json_dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(key, out);
                out.push_str(": ");
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(kind: CallKind, name: &str) -> ToolCall {
        ToolCall {
            id: "tu_1".into(),
            name: name.into(),
            input: json!({}),
            kind,
            thread_id: None,
            permission: None,
        }
    }

    #[test]
    fn case_54_58_result_shapes() {
        let out = ToolOutput::text("got 42");
        assert_eq!(
            result_event(&call(CallKind::Builtin, "echo"), &out).to_string(),
            r#"{"type":"user.tool_result","tool_use_id":"tu_1","is_error":false,"content":[{"type":"text","text":"got 42"}]}"#
        );
        let out = ToolOutput::error("order not found");
        let event = result_event(&call(CallKind::Custom, "get_order_status"), &out);
        assert_eq!(
            event,
            json!({"type": "user.custom_tool_result", "custom_tool_use_id": "tu_1", "is_error": true,
                   "content": [{"type": "text", "text": "order not found"}]})
        );
    }

    #[test]
    fn case_88_deadline_text() {
        let mut out = ToolOutput::error("whatever the host said");
        out.deadline_exceeded = true;
        let event = result_event(&call(CallKind::Builtin, "slow"), &out);
        assert_eq!(event["is_error"], json!(true));
        assert_eq!(
            event["content"],
            json!([{"type": "text", "text": "tool 'slow' timed out"}])
        );
    }

    #[test]
    fn case_95_96_content_conversion() {
        let blocks = vec![json!({"type": "tool_reference", "tool_name": "weather"})];
        assert_eq!(
            session_content(&blocks),
            vec![
                json!({"type": "text", "text": "{\"type\": \"tool_reference\", \"tool_name\": \"weather\"}"})
            ]
        );
        let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}});
        let doc = json!({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}});
        let search = json!({"type": "search_result", "source": "s", "title": "t", "content": []});
        assert_eq!(
            session_content(&[image.clone(), doc.clone(), search.clone()]),
            vec![image, doc, search]
        );
        let no_output = json!({"type": "text", "text": "(no output)"});
        assert_eq!(session_content(&[]), vec![no_output.clone()]);
        assert_eq!(
            session_content(&[json!({"type": "text", "text": ""})]),
            vec![no_output]
        );
        assert_eq!(
            session_content(&[json!({"type": "text", "text": "hi", "cache": 1})]),
            vec![json!({"type": "text", "text": "hi"})]
        );
    }

    #[test]
    fn python_dumps_escapes_non_ascii() {
        assert_eq!(
            python_json_dumps(&json!({"a": ["é", 1, null], "b": "😀\n"})),
            r#"{"a": ["\u00e9", 1, null], "b": "\ud83d\ude00\n"}"#
        );
    }
}
