//! The units of swarm mode (`[swarm] deploy_at_boot = true`): one oneshot,
//! `<prefix>-swarm.service`, that runs `hlsys swarm deploy` at boot on a manager. Swarm
//! runs the stacks, so no per-stack unit, layer target or `<prefix>.target` is written:
//! two owners of the same services would fight.

use super::parts::{config_name, hlsys_cmd, new_unit, reads_home, Generated, WantsLink};
use super::sandbox;
use crate::model::{Model, SWARM_UNIT};

/// Slack on top of the layers' timeouts: networks and `docker compose config` per stack.
const DEPLOY_SLACK_SEC: u64 = 120;

/// `<prefix>-swarm.service`, wanted by multi-user.target.
pub fn render(model: &Model) -> Generated {
    let name = format!("{}-{SWARM_UNIT}.service", model.config.unit_prefix);
    let dir = model.config.stacks_dir.to_string_lossy();
    let timeout: u64 = model
        .layers
        .iter()
        .map(|l| model.config.swarm.layer_timeout(&l.name))
        .sum::<u64>()
        + DEPLOY_SLACK_SEC;
    let mut uf = new_unit(
        &config_name(model),
        "hlsys: deploy the stack tree to Docker Swarm, layer by layer",
    );
    // The tree may be on a disk mounted late: wait for its mount, skip when it is empty.
    uf.section("Unit")
        .set("Requires", "docker.service")
        .set("Wants", "network-online.target")
        .add(
            "After",
            ["docker.service".to_string(), "network-online.target".to_string()],
        )
        .set("RequiresMountsFor", dir.as_ref())
        .set("ConditionDirectoryNotEmpty", dir.as_ref());
    uf.section("Service")
        .set("Type", "oneshot")
        .set("RemainAfterExit", "yes")
        .set("TimeoutStartSec", timeout.to_string())
        .add("ExecStart", hlsys_cmd(model, &["swarm", "deploy"]));
    // The same sandbox as the networks oneshot: it too only reads the tree and talks to
    // dockerd over its socket (`docker compose config`, `docker stack deploy`, the API).
    sandbox::harden(
        uf.section("Service"),
        sandbox::Kind::Oneshot,
        reads_home(model),
        model.config.scope,
    );
    let mut g = Generated::default();
    g.add(name.clone(), uf.to_string());
    g.links.push(WantsLink {
        dir: format!("{}.wants", model.config.scope.boot_target()),
        unit: name,
    });
    g
}
