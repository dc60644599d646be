//! One man page per subcommand (hlsys-stacks(1), hlsys-start(1), …) and the shell
//! completions are generated from the clap definitions and checked in; this test fails
//! when they are not current. Refresh with `UPDATE_DOCS=1 cargo test --test docs` and
//! commit the result. hlsys(1), the overview with names, exit status, environment and
//! examples, hlsys.toml(5) and hlsys-generator(8) are written by hand; the test checks
//! that hlsys(1) covers every subcommand.

use std::collections::BTreeMap;
use std::path::Path;

use clap::CommandFactory;

/// Every generated file: path relative to the repo → content.
fn generated() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let cmd = hlsys::cli::Cli::command();
    fn pages(cmd: &clap::Command, name: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        // clap wants &'static names without its "string" feature; a test may leak.
        let cmd = cmd
            .clone()
            .name(&*name.to_string().leak())
            .bin_name(&*name.replace('-', " ").leak());
        if name != "hlsys" {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd.clone()).render(&mut buf).unwrap();
            out.insert(format!("man/{name}.1"), buf);
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages(sub, &format!("{name}-{}", sub.get_name()), out);
        }
    }
    pages(&cmd, "hlsys", &mut out);
    for (shell, file) in [
        (clap_complete::Shell::Bash, "completions/hlsys.bash"),
        (clap_complete::Shell::Zsh, "completions/_hlsys"),
        (clap_complete::Shell::Fish, "completions/hlsys.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut hlsys::cli::Cli::command(), "hlsys", &mut buf);
        out.insert(file.to_string(), buf);
    }
    out
}

/// clap's own consistency checks (conflicting flags, defaults outside their possible values,
/// positional order, …), which otherwise run only when a command line hits them.
#[test]
fn the_command_line_definition_is_consistent() {
    hlsys::cli::Cli::command().debug_assert();
}

#[test]
fn man_pages_and_completions_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = generated();
    assert!(
        files.len() > 8,
        "expected a page per subcommand, got {:?}",
        files.keys()
    );
    if std::env::var_os("UPDATE_DOCS").is_some() {
        for (rel, content) in &files {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        return;
    }
    let mut stale = Vec::new();
    for (rel, content) in &files {
        if std::fs::read(root.join(rel)).ok().as_deref() != Some(content.as_slice()) {
            stale.push(rel.clone());
        }
    }
    // Pages of subcommands that no longer exist must go too.
    for e in std::fs::read_dir(root.join("man")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("hlsys-") && name.ends_with(".1") && !files.contains_key(&format!("man/{name}")) {
            stale.push(format!("man/{name} (no such subcommand)"));
        }
    }
    assert!(
        stale.is_empty(),
        "not current, run `UPDATE_DOCS=1 cargo test --test docs`: {stale:?}"
    );
}

#[test]
fn overview_page_covers_every_subcommand() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/hlsys.1")).unwrap();
    for sub in hlsys::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
    {
        let name = sub.get_name();
        // A `.B`/`.BR` line (a tagged paragraph) that starts with the command's name.
        let described = page.lines().any(|l| {
            let mut words = l.split_whitespace();
            matches!(words.next(), Some(".B" | ".BR")) && words.next().map(|w| w.trim_matches('"')) == Some(name)
        });
        assert!(described, "man/hlsys.1 does not describe `hlsys {name}`");
        assert!(
            page.contains(&format!("hlsys\\-{name} (1)")),
            "man/hlsys.1 does not refer to hlsys-{name}(1)"
        );
    }
}

#[test]
fn hand_written_pages_name_every_config_key() {
    // hlsys.toml(5) must document each key the parser accepts.
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/hlsys.toml.5")).unwrap();
    for key in [
        "stacks_dir",
        "unit_prefix",
        "env_files",
        "hlsys_path",
        "after",
        "requires",
        "stacks",
        "driver",
        "internal",
        "subnet",
        "gateway",
        "labels",
        "wants",
        "layer",
        "enabled",
        "timeout_start_sec",
        "networks.toml",
        "service.toml",
        "hlsys.toml.d",
        "strict_permissions",
        "trusted_owner",
        "trusted_group",
    ] {
        assert!(page.contains(key), "man/hlsys.toml.5 does not mention {key}");
    }
}
