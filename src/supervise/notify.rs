//! What the supervisor tells systemd (sd_notify): STATUS= lines, which the journal gets
//! too, and start-timeout extensions while Compose makes progress. Outside systemd
//! (NOTIFY_SOCKET unset) each is a no-op, which keeps `hlsys supervise` usable by hand.

use std::time::Instant;

use libsystemd::daemon::{notify, NotifyState};

/// Sends `states` to systemd, if it listens.
pub fn send(states: &[NotifyState]) {
    let _ = notify(false, states);
}

/// A line for the journal and for `systemctl status` (STATUS=).
pub fn status(text: &str) {
    eprintln!("{text}");
    send(&[NotifyState::Status(text.to_string())]);
}

/// Moves the start deadline to `until` if that is later (systemd never shortens it, and
/// never below TimeoutStartSec from the start).
pub fn extend_timeout(until: Instant) {
    let left = until.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        send(&[NotifyState::Other(format!("EXTEND_TIMEOUT_USEC={}", left.as_micros()))]);
    }
}

/// A line of Compose's progress: to the journal, and as STATUS= with its phase.
pub fn forward_progress(line: &str) {
    eprintln!("{line}");
    let lower = line.to_lowercase();
    let phase = if lower.contains("pull") {
        "pulling"
    } else if lower.contains("waiting") || lower.contains("healthy") {
        "waiting for health"
    } else {
        "creating"
    };
    send(&[NotifyState::Status(format!("{phase}: {line}"))]);
}
