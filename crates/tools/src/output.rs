//! What a tool call returns: an error flag and content blocks (protocol.md §6.4).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The result of one tool call, ready to be posted as `user.tool_result`.
///
/// `content` holds wire-shaped blocks (`text`, `image`, `document`); it is never
/// empty once built through the constructors here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub is_error: bool,
    pub content: Vec<Value>,
    /// The call hit the caller's outer deadline (the runner's 150 s bound), not
    /// its own timeout. The runner reports it as `tool '<name>' timed out`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deadline_exceeded: bool,
}

impl ToolOutput {
    /// A successful text result; empty text becomes `(no output)` (§6.4 rule 2).
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            is_error: false,
            content: vec![text_block(text.into())],
            deadline_exceeded: false,
        }
    }

    /// An error result whose text is `text`.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            is_error: true,
            content: vec![text_block(text.into())],
            deadline_exceeded: false,
        }
    }

    /// A successful result made of arbitrary blocks (image, document).
    pub fn blocks(content: Vec<Value>) -> Self {
        let content = if content.is_empty() {
            vec![text_block(String::new())]
        } else {
            content
        };
        Self {
            is_error: false,
            content,
            deadline_exceeded: false,
        }
    }

    /// The outer deadline fired; `name` is the tool name.
    pub fn deadline(name: &str) -> Self {
        let mut out = Self::error(format!("tool {} timed out", crate::pyrepr::repr(name)));
        out.deadline_exceeded = true;
        out
    }

    /// Concatenated text of the text blocks (for logs, tests and transcripts).
    pub fn joined_text(&self) -> String {
        let mut s = String::new();
        for block in &self.content {
            if let Some(t) = block.get("text").and_then(Value::as_str) {
                if !s.is_empty() {
                    s.push('\n');
                }
                s.push_str(t);
            }
        }
        s
    }
}

fn text_block(text: String) -> Value {
    let text = if text.is_empty() {
        "(no output)".to_string()
    } else {
        text
    };
    json!({"type": "text", "text": text})
}
