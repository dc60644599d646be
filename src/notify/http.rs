//! Sending a [`Message`] to a target: a webhook (JSON POST) or ntfy (POST body = message,
//! `Title:` header), as HTTP/1.1 over a plain `TcpStream`. Only `http://`: no TLS crate is
//! in this build, and the config refuses an `https://` target when it is read
//! (core/src/config/notify.rs, with file and line). The token is read from its file here,
//! sent as `Authorization: Bearer …`, and never logged.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::Message;
use hlsys_core::config::notify::{NotifyTarget, TargetKind};

const TIMEOUT: Duration = Duration::from_secs(10);

/// `http://host[:port]/path` → (host:port, host header, path).
pub fn split_url(url: &str) -> Result<(String, String, String)> {
    if url.starts_with("https://") {
        bail!("{}", hlsys_core::config::notify::NO_HTTPS);
    }
    let rest = url.strip_prefix("http://").context("not an http:// URL")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_string(), path))
}

/// Header values must stay on their line, and ntfy reads titles as ASCII best.
fn header_value(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { ' ' })
        .collect()
}

fn token(t: &NotifyTarget) -> Result<Option<String>> {
    let Some(f) = &t.token_file else { return Ok(None) };
    let text = hlsys_core::bounded::read_text_opt(f, 64 * 1024)
        .map_err(|e| anyhow::anyhow!("token_file {}: {e}", f.display()))?
        .with_context(|| format!("token_file {} does not exist", f.display()))?;
    let tok = text.trim();
    if tok.is_empty() || tok.chars().any(|c| c.is_control() || c == ' ') {
        bail!("token_file {}: empty or not one word", f.display());
    }
    Ok(Some(tok.to_string()))
}

/// The request bytes for `target`.
pub fn request(target: &NotifyTarget, msg: &Message, token: Option<&str>) -> Result<Vec<u8>> {
    let (_, host, path) = split_url(&target.url)?;
    let (ctype, body, extra) = match target.kind {
        TargetKind::Webhook => ("application/json", serde_json::to_vec(msg)?, String::new()),
        TargetKind::Ntfy => (
            "text/plain; charset=utf-8",
            msg.message.clone().into_bytes(),
            format!(
                "Title: {}\r\nTags: {}\r\n",
                header_value(&msg.title),
                if msg.event == "failed" {
                    "warning"
                } else {
                    "white_check_mark"
                }
            ),
        ),
    };
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hlsys/{}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend(body);
    Ok(bytes)
}

/// Sends `msg` to `target`; Ok once it answered 2xx.
pub fn send(target: &NotifyTarget, msg: &Message) -> Result<()> {
    let tok = token(target)?;
    let bytes = request(target, msg, tok.as_deref())?;
    let (addr, _, _) = split_url(&target.url)?;
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("no address for {addr}"))?;
    let mut s = TcpStream::connect_timeout(&sock, TIMEOUT).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(&bytes)?;
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    while !got.contains(&b'\n') {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() > 4096 {
            break;
        }
    }
    let line = String::from_utf8_lossy(&got);
    let line = line.lines().next().unwrap_or("");
    let code = line.split_whitespace().nth(1).unwrap_or("");
    if !code.starts_with('2') {
        bail!("{addr} answered {:?}", header_value(line));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_host_and_path() {
        let s = |u| split_url(u).unwrap();
        assert_eq!(
            s("http://127.0.0.1:8080/hook"),
            ("127.0.0.1:8080".into(), "127.0.0.1:8080".into(), "/hook".into())
        );
        assert_eq!(
            s("http://ntfy.lan"),
            ("ntfy.lan:80".into(), "ntfy.lan".into(), "/".into())
        );
        assert!(split_url("https://ntfy.sh/x").is_err());
    }

    #[test]
    fn ntfy_gets_a_title_header_and_the_text_as_body() {
        let t = NotifyTarget {
            kind: TargetKind::Ntfy,
            url: "http://127.0.0.1:9/lab".into(),
            token_file: None,
        };
        let m = super::super::test_message("homelab");
        let r = String::from_utf8(request(&t, &m, Some("tok")).unwrap()).unwrap();
        assert!(r.starts_with("POST /lab HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"), "{r}");
        assert!(r.contains("\r\nTitle: homelab: test notification\r\n"), "{r}");
        assert!(r.contains("\r\nAuthorization: Bearer tok\r\n"), "{r}");
        assert!(r.ends_with(&format!("\r\n\r\n{}", m.message)), "{r}");
    }
}
