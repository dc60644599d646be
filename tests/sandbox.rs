//! Every generated service carries its sandbox (core/src/units/sandbox.rs) and no
//! `EnvironmentFile=`, on the example tree: a stack unit, the networks oneshot, the GPU
//! check (the only one with the host's devices) and the unit that waits for a tree.

use std::path::Path;

use hlsys_core::units::sandbox::{directives, Kind};
use hlsys_core::units::unit_file::UnitFile;

fn units(stacks_dir: Option<&Path>) -> Vec<(String, UnitFile)> {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/homelab");
    let mut config = hlsys_core::config::Config::load(&tree.join("hlsys.toml"), true).unwrap();
    if let Some(d) = stacks_dir {
        config.stacks_dir = d.to_path_buf();
    }
    let model = hlsys_core::tree::build(config).unwrap();
    hlsys_core::units::render(&model)
        .units
        .into_iter()
        .filter(|u| u.name.ends_with(".service"))
        .map(|u| (u.name.clone(), UnitFile::parse(&u.content).unwrap()))
        .collect()
}

fn kind(name: &str) -> Kind {
    match name {
        "homelab-gpu.service" => Kind::GpuCheck,
        "homelab-networks.service" | "homelab-tree.service" => Kind::Oneshot,
        _ => Kind::Stack,
    }
}

fn assert_sandboxed(name: &str, unit: &UnitFile) {
    assert!(
        unit.values("Service", "EnvironmentFile").is_empty(),
        "{name} loads an env file into its own environment"
    );
    for (key, value) in directives(kind(name), false) {
        assert!(
            unit.values("Service", key).contains(&value),
            "{name}: no {key}={value} in {:?}",
            unit.get("Service")
        );
    }
}

#[test]
fn every_generated_service_is_sandboxed() {
    let all = units(None);
    assert!(all.len() > 3, "{:?}", all.iter().map(|u| &u.0).collect::<Vec<_>>());
    for (name, unit) in &all {
        assert_sandboxed(name, unit);
    }
    let gpu = &all
        .iter()
        .find(|u| u.0 == "homelab-gpu.service")
        .expect("a GPU check")
        .1;
    assert!(
        gpu.values("Service", "PrivateDevices").is_empty(),
        "the GPU check needs /dev/nvidia*"
    );
}

#[test]
fn the_unit_waiting_for_a_tree_is_sandboxed_too() {
    let missing = tempfile::tempdir().unwrap().path().join("not-mounted-yet");
    let all = units(Some(&missing));
    let (name, unit) = all.iter().find(|u| u.0 == "homelab-tree.service").expect("a tree unit");
    assert_sandboxed(name, unit);
}
