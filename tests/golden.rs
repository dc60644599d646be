//! Golden test: the units for examples/homelab, diffed against tests/golden/homelab/.
//! The tree's absolute path is replaced by `@TREE@` so the test runs from any checkout.
//! After an intended change: `UPDATE_GOLDEN=1 cargo test --test golden`, then review
//! the diff of tests/golden/ like any other code change.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  expected: {x}\n  actual:   {y}", i + 1);
        }
    }
    format!(
        "line counts differ: expected {}, actual {}",
        a.lines().count(),
        b.lines().count()
    )
}

#[test]
fn example_homelab_units_match_golden_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tree = root.join("examples/homelab");
    let mut config = hlsys_core::config::Config::load(&tree.join("hlsys.toml"), true).unwrap();
    common::trust_runner(&mut config);
    let model = hlsys_core::tree::build(config).unwrap();
    assert!(model.errors.is_empty(), "example tree has errors: {:?}", model.errors);
    let generated = hlsys_core::units::render(&model);
    let out = tempfile::tempdir().unwrap();
    hlsys_core::generator::write_all(out.path(), &model, &generated).unwrap();

    let tree_str = tree.to_string_lossy().into_owned();
    let mut actual = common::read_tree(out.path());
    for v in actual.values_mut() {
        *v = v.replace(&tree_str, "@TREE@");
    }
    // The report carries fingerprints of files that differ between checkouts (mtimes).
    let report = actual
        .remove(hlsys_core::generator::REPORT_NAME)
        .expect("report written");
    assert!(report.contains("\"tree_available\": true"), "{report}");

    let golden: PathBuf = root.join("tests/golden/homelab");
    if common::rewrite_golden(&golden, &actual) {
        return;
    }
    let expected = common::read_tree(&golden);
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&expected),
        names(&actual),
        "set of generated files differs from {}",
        golden.display()
    );
    for (rel, exp) in &expected {
        let act = &actual[rel];
        assert!(
            exp == act,
            "{rel} differs from the golden copy ({})",
            first_difference(exp, act)
        );
    }
}

#[test]
fn units_currency_follows_the_tree() {
    use hlsys_core::generator::{freshness, Freshness};
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/homelab");
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(status.success());
    let load = || {
        let mut config = hlsys_core::config::Config::load(&tree.join("hlsys.toml"), true).unwrap();
        common::trust_runner(&mut config);
        hlsys_core::tree::build(config).unwrap()
    };
    let out = work.path().join("gen");
    assert_eq!(freshness(&load(), &out), Freshness::NotGenerated);
    let model = load();
    hlsys_core::generator::write_all(&out, &model, &hlsys_core::units::render(&model)).unwrap();
    assert_eq!(freshness(&load(), &out), Freshness::Current { units: 20 });
    // A new stack: its unit, its preparation unit and its layer target are stale.
    std::fs::create_dir_all(tree.join("media/jellyfin")).unwrap();
    std::fs::write(
        tree.join("media/jellyfin/compose.yaml"),
        "services:\n  jf:\n    image: x\n",
    )
    .unwrap();
    assert_eq!(
        freshness(&load(), &out),
        Freshness::Stale {
            changed: vec![
                "homelab-media-jellyfin-prepare.service".into(),
                "homelab-media-jellyfin.service".into(),
                "homelab-media.target".into()
            ]
        }
    );
    // A removed stack is left over in the generated directory.
    std::fs::remove_dir_all(tree.join("media/jellyfin")).unwrap();
    std::fs::remove_dir_all(tree.join("media/stash")).unwrap();
    let Freshness::Stale { changed } = freshness(&load(), &out) else {
        panic!("expected stale")
    };
    assert!(
        changed.contains(&"homelab-media-stash.service".to_string()),
        "{changed:?}"
    );
}
