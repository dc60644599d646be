//! `[notify]` and `[metrics]` in hlsys.toml: where `hlsys notify` sends a message when a
//! stack (or the networks/GPU unit) fails, and where the metrics socket listens. Both are
//! off unless configured: without them the generator writes exactly the units it wrote
//! before they existed.
//!
//! A target's token is a *file* name: the token is read by `hlsys notify` at send time,
//! so it is never written into a unit, a log or a message.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::escape::check_value;

/// Where the metrics socket listens unless `[metrics] listen` says otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// What a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A JSON POST (`{"title", "message", "event", "stacks": [...]}`).
    Webhook,
    /// ntfy's publish API: POST body = message, `Title:` header.
    Ntfy,
}

/// One `[[notify.target]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    pub kind: TargetKind,
    /// `http://host[:port]/path` (no https: see [`check_url`]); checked while the file
    /// is read, so an error names its line.
    #[serde(deserialize_with = "url_value")]
    pub url: String,
    /// A file whose content (trimmed) is sent as `Authorization: Bearer …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

/// `[notify]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub target: Vec<NotifyTarget>,
    /// A message once `<prefix>.target` is reached ("homelab ready: N/M stacks healthy").
    #[serde(default)]
    pub on_ready: bool,
}

impl NotifyConfig {
    /// Whether the generator writes the notifier units.
    pub fn enabled(&self) -> bool {
        !self.target.is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.on_ready && self.target.is_empty() {
            return Err("notify.on_ready: no [[notify.target]] to send to".into());
        }
        for (i, t) in self.target.iter().enumerate() {
            if let Some(f) = &t.token_file {
                if !f.is_absolute() {
                    return Err(format!(
                        "notify.target[{i}].token_file {:?}: must be absolute",
                        f.display()
                    ));
                }
                check_value("token_file", &f.to_string_lossy()).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// The message for an `https://` target: hlsys carries no TLS implementation, and a
/// target accepted here but failing at the first incident would be found out too late.
pub const NO_HTTPS: &str = "https:// is not supported: hlsys sends over plain http:// only \
(use an http:// address on the LAN, e.g. a local ntfy, or a local reverse proxy that forwards to https)";

fn url_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let url = String::deserialize(d)?;
    check_url(&url).map_err(|m| serde::de::Error::custom(format!("notify.target.url {url:?}: {m}")))?;
    Ok(url)
}

/// An http:// URL with a host, and nothing a header or request line could be split with.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Err(NO_HTTPS.into());
    }
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs are supported")?;
    if url.chars().any(|c| c.is_control() || c == ' ') {
        return Err("blanks or control characters".into());
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err("needs a host (and no user:password@, use token_file)".into());
    }
    Ok(())
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A `ListenStream=` value: `ADDRESS:PORT`, `[IPv6]:PORT` or a port alone.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    DEFAULT_METRICS_LISTEN.to_string()
}

impl MetricsConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_listen(&self.listen).map_err(|m| format!("metrics.listen {:?}: {m}", self.listen))
    }
}

/// The subset of `ListenStream=` hlsys accepts: a TCP port, alone or with an IPv4/IPv6
/// address (no paths, no interface names: the socket is for Prometheus).
pub fn check_listen(v: &str) -> Result<(), String> {
    if let Ok(port) = v.parse::<u16>() {
        return if port == 0 { Err("port 0".into()) } else { Ok(()) };
    }
    match v.parse::<SocketAddr>() {
        Ok(a) if a.port() == 0 => Err("port 0".into()),
        Ok(_) => Ok(()),
        Err(_) => Err("expected ADDRESS:PORT, [IPv6]:PORT or PORT".into()),
    }
}

/// `[notify]` and `[metrics]` as read, once checked.
pub fn validated(
    notify: NotifyConfig,
    metrics: Option<MetricsConfig>,
) -> Result<(NotifyConfig, Option<MetricsConfig>), String> {
    notify.validate()?;
    if let Some(m) = &metrics {
        m.validate()?;
    }
    Ok((notify, metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_listen_values() {
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert_eq!(check_url("https://ntfy.sh/lab"), Err(NO_HTTPS.to_string()));
        for bad in [
            "ftp://x",
            "http://",
            "http://u:p@h/",
            "http://h/a b",
            "http://h/\r\nX: y",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        for ok in ["127.0.0.1:9464", "9464", "[::1]:9464", "172.21.0.1:9464"] {
            assert!(check_listen(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "0",
            "localhost:9464",
            "/run/x.sock",
            "1.2.3.4",
            "1.2.3.4:0",
            "1.2.3.4:9464\nX=y",
        ] {
            assert!(check_listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn on_ready_needs_a_target() {
        let c = NotifyConfig {
            target: vec![],
            on_ready: true,
        };
        assert!(c.validate().is_err());
    }
}
