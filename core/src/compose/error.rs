//! Why a compose file could not be read, and how a key is spelled in that message.

use serde_yaml_ng::Value;

/// Why a compose file could not be read. `key` is a dotted path (`services.web.ports.0`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{message}", at_line(*line), at_key(key.as_deref()))]
pub struct ComposeError {
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

fn at_key(key: Option<&str>) -> String {
    key.map(|k| format!("key {k}: ")).unwrap_or_default()
}

impl ComposeError {
    pub(crate) fn message(message: &str) -> Self {
        ComposeError {
            line: None,
            key: None,
            message: message.to_string(),
        }
    }

    pub(crate) fn at(key: &str, message: impl Into<String>) -> Self {
        ComposeError {
            line: None,
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

pub(crate) type Result<T, E = ComposeError> = std::result::Result<T, E>;

/// A mapping key as it appears in a dotted key path.
pub(crate) fn key_display(key: &Value) -> String {
    scalar(key).unwrap_or_else(|| "?".to_string())
}

/// A scalar as Compose sees it after decoding into `any` and formatting.
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
