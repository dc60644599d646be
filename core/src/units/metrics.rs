//! The metrics socket (`[metrics]` in hlsys.toml), written only when configured:
//! `<prefix>-metrics.socket` listens where `listen` says (`Accept=yes`) and starts one
//! `<prefix>-metrics@.service` per connection, whose stdin and stdout are the connection:
//! `hlsys metrics --serve` reads one HTTP request and answers it. Nothing listens in a
//! process of hlsys's own, and a scrape costs one short-lived process. The generator
//! links the socket into `sockets.target.wants/`.

use super::parts::{config_name, hlsys_cmd, new_unit, reads_home};
use super::sandbox;
use crate::model::Model;

pub fn socket_name(prefix: &str) -> String {
    format!("{prefix}-metrics.socket")
}

pub fn service_name(prefix: &str) -> String {
    format!("{prefix}-metrics@.service")
}

pub fn socket_unit(model: &Model, listen: &str) -> String {
    let mut uf = new_unit(&config_name(model), "hlsys: Prometheus metrics socket");
    uf.section("Socket")
        .set("ListenStream", listen)
        .set("Accept", "yes")
        // A scraper that hammers it gets refused rather than a fork per connection.
        .set("MaxConnections", "8")
        .set("NoDelay", "yes")
        // The address may be a Docker network's gateway, which exists only once Docker
        // made the network: bind it anyway.
        .set("FreeBind", "yes");
    uf.to_string()
}

pub fn service_unit(model: &Model) -> String {
    let mut uf = new_unit(&config_name(model), "hlsys: answer one metrics scrape");
    let sv = uf.section("Service");
    sv.set("Type", "oneshot")
        .add("ExecStart", hlsys_cmd(model, &["metrics", "--serve"]))
        .set("StandardInput", "socket")
        .set("StandardOutput", "socket")
        .set("StandardError", "journal")
        .set("TimeoutStartSec", "30s");
    sandbox::harden(sv, sandbox::Kind::Served, reads_home(model), model.config.scope);
    uf.to_string()
}
