//! The notifier units (`[notify]` in hlsys.toml), written only when a target is configured.
//!
//! - `<prefix>-notify@.service`: a template every stack unit and the networks/GPU units
//!   name in `OnFailure=<prefix>-notify@%n.service`; it runs `hlsys notify --failed %i`,
//!   which collects the failures of a short window into one message (src/notify/).
//! - `<prefix>-notify-ready.service` (`on_ready = true`): wanted by `<prefix>.target` and
//!   ordered after it, it sends "homelab ready: N/M stacks healthy in S s".
//!
//! When systemd 252 fires `OnFailure=` for a unit with `Restart=on-failure` (measured in a
//! booted machine, README "Measurements"): not at each failure that is followed by an
//! automatic restart, only once the unit ends up `failed`, i.e. when the start limit
//! (`StartLimitBurst=10` in 10 min for stacks) refuses the next restart, or a unit
//! without restarts (networks, GPU) fails. One incident, one activation: no rate limit is
//! needed for a restart loop; the window in the notifier is for many units at once.
//! systemd 252 also starts `OnFailure=` of a unit whose start *job* failed because of a
//! dependency (a stack requiring one that failed, at that one's first failure; measured
//! in tests/e2e_notify.rs); such a unit is not `failed`, and `hlsys notify` skips it
//! (it is listed as held back by the failed one).

use super::parts::{config_name, hlsys_cmd, new_unit, reads_home};
use super::sandbox;
use super::unit_file::INSTANCE_ARG;
use crate::model::{Model, NOTIFY_READY_UNIT};

/// `<prefix>-notify@.service`
pub fn template_name(prefix: &str) -> String {
    format!("{prefix}-notify@.service")
}

/// The `OnFailure=` value of a unit that reports its failure.
pub fn on_failure(prefix: &str) -> String {
    format!("{prefix}-notify@%n.service")
}

/// `<prefix>-notify-ready.service`
pub fn ready_name(prefix: &str) -> String {
    format!("{prefix}-{NOTIFY_READY_UNIT}.service")
}

/// Where the notifier keeps its lock and the window's state (`RuntimeDirectory=`).
pub const RUNTIME_DIR: &str = "hlsys/notify";

fn notify_unit(model: &Model, description: &str, args: &[&str]) -> super::unit_file::UnitFile {
    let mut uf = new_unit(&config_name(model), description);
    uf.section("Unit")
        .set("Wants", "network-online.target")
        .set("After", "network-online.target");
    let sv = uf.section("Service");
    sv.set("Type", "oneshot").add("ExecStart", hlsys_cmd(model, args));
    // Shared by concurrent instances: one holds the window, the others add to it; kept
    // when one instance stops while another still runs.
    sv.set("RuntimeDirectory", RUNTIME_DIR)
        .set("RuntimeDirectoryMode", "0700")
        .set("RuntimeDirectoryPreserve", "yes")
        .set("TimeoutStartSec", "2min");
    sandbox::harden(sv, sandbox::Kind::Notify, reads_home(model), model.config.scope);
    uf
}

/// The template run by `OnFailure=`.
pub fn template_unit(model: &Model) -> String {
    notify_unit(
        model,
        "hlsys: send a notification about a failed unit",
        &["notify", "--failed", INSTANCE_ARG],
    )
    .to_string()
}

/// The "homelab ready" oneshot.
pub fn ready_unit(model: &Model) -> String {
    let root = model.root_target();
    let mut uf = notify_unit(model, "hlsys: notify that the homelab is up", &["notify", "--ready"]);
    uf.section("Unit").merge("After", [root]);
    uf.to_string()
}
