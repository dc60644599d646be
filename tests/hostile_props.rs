//! The generator's contract on generated hostile trees (proptest): whatever the input,
//! the binary exits 0 (a stack's problem) or 2 (an unusable config, nothing written),
//! never dies of a signal, stays within the harness's wall-time and memory bounds, keeps
//! its report and log under their caps, keeps every good stack's unit, and lets a secret
//! planted in an env file reach no channel, raw or escaped.
//!
//! Each case is a tree of a few fuzzed stacks beside the two good ones of the harness:
//! compose files that `include` and `extends` each other (themselves too, in chains and
//! diamonds), anchors and aliases, the secret interpolated into `x-hlsys`, names and
//! service names, odd directory names; and tree-level `service.toml` and `networks.toml`
//! with dependency rings and overlapping subnets. Cases are few and small (CI runs them
//! all; `PROPTEST_CASES` raises the count by hand).

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use proptest::prelude::*;

use hostile::*;

/// The secret: quotes and a backslash, so that escaping cannot hide it from the masking;
/// [`MARK`], its middle, survives any escaping and is what the channels are searched for.
const SECRET: &str = "pin\"CANARY7319\\q";
const MARK: &str = "CANARY7319";
/// Caps the report and the log must keep, whatever the tree (the documented caps are
/// smaller; these catch output that grows with the input).
const MAX_REPORT: usize = 4 << 20;
const MAX_LOG: usize = 1 << 20;

/// Piece of a compose document; `{S}` is where a reference to the secret goes.
#[derive(Debug, Clone)]
enum Piece {
    Include(Vec<usize>),
    Extends { file: Option<usize>, service: String },
    Layer,
    Requires,
    Anchors(usize, usize),
    Service(String),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        prop::collection::vec(0usize..6, 1..4).prop_map(Piece::Include),
        (prop::option::of(0usize..6), "[a-z]{1,3}|\\$\\{S\\}")
            .prop_map(|(file, service)| Piece::Extends { file, service }),
        Just(Piece::Layer),
        Just(Piece::Requires),
        (1usize..6, 1usize..6).prop_map(|(d, w)| Piece::Anchors(d, w)),
        "[a-z]{1,4}|x\\$\\{S\\}|[a-z]\u{1b}[a-z]".prop_map(Piece::Service),
    ]
}

/// The files of a fuzzed stack: file i includes or extends file j (0..6, some missing).
fn render(pieces: &[Piece]) -> String {
    let mut top = String::new();
    let mut services = String::from("services:\n  a: {image: busybox}\n");
    for p in pieces {
        match p {
            Piece::Include(files) => {
                let paths: Vec<String> = files.iter().map(|f| format!("f{f}.yaml")).collect();
                top.push_str(&format!("include:\n  - path: [{}]\n", paths.join(", ")));
            }
            Piece::Extends { file, service } => {
                let file = file.map(|f| format!("file: f{f}.yaml, ")).unwrap_or_default();
                let service = service.replace("${S}", "${SECRET}");
                services.push_str(&format!(
                    "  e{}: {{extends: {{{file}service: \"{service}\"}}}}\n",
                    top.len()
                ));
            }
            Piece::Layer => top.push_str("x-hlsys: {layer: \"${SECRET}\"}\n"),
            Piece::Requires => top.push_str("x-hlsys: {requires: [\"${SECRET}\"]}\n"),
            Piece::Anchors(depth, width) => {
                top.push_str("x-a0: &a0 [lol, lol]\n");
                for i in 1..*depth {
                    let refs = vec![format!("*a{}", i - 1); *width].join(", ");
                    top.push_str(&format!("x-a{i}: &a{i} [{refs}]\n"));
                }
            }
            Piece::Service(name) => {
                let name = name.replace("${S}", "${SECRET}");
                services.push_str(&format!("  {}: {{image: busybox}}\n", quoted(&name)));
            }
        }
    }
    // Later keys of the same name win in YAML parsers that accept them; refused ones are
    // a stack error like any other.
    top + &services
}

#[derive(Debug, Clone)]
struct Tree {
    stacks: Vec<(String, Vec<Vec<Piece>>)>,
    service_toml: Vec<(usize, usize)>,
    overlapping_networks: usize,
}

fn tree() -> impl Strategy<Value = Tree> {
    let stack = (
        "[a-z]{1,6}|networks|gpu|[a-z]{2}\u{7}|[a-z]{2}/[a-z]{2}",
        prop::collection::vec(prop::collection::vec(piece(), 0..4), 1..6),
    );
    (
        prop::collection::vec(stack, 1..4),
        prop::collection::vec((0usize..4, 0usize..4), 0..6),
        0usize..40,
    )
        .prop_map(|(stacks, service_toml, overlapping_networks)| Tree {
            stacks,
            service_toml,
            overlapping_networks,
        })
}

/// A double-quoted string as JSON writes it, which TOML and YAML read alike.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

fn plant(s: &Setup, t: &Tree) {
    let mut ids = Vec::new();
    for (i, (name, files)) in t.stacks.iter().enumerate() {
        let dir = format!("tree/fz{i}{name}");
        s.write(&format!("{dir}/.env"), format!("SECRET='{SECRET}'\n"));
        s.write(&format!("{dir}/compose.yaml"), render(&files[0]));
        for (j, f) in files.iter().enumerate().skip(1) {
            s.write(&format!("{dir}/f{}.yaml", j - 1), render(f));
        }
        ids.push(format!("fz{i}{}", name.replace('/', "-")));
    }
    if !t.service_toml.is_empty() {
        // One table per stack (a duplicate table would only be a config error), its
        // requires making rings through the fuzzed stacks.
        let mut requires: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        let all: Vec<&str> = ids.iter().map(String::as_str).chain(["good-a", "good-b"]).collect();
        // A good stack requires nothing fuzzed: it must keep its unit whatever they do.
        for (a, b) in &t.service_toml {
            requires
                .entry(ids[a % ids.len()].as_str())
                .or_default()
                .push(all[b % all.len()]);
        }
        let mut toml = String::new();
        for (a, bs) in requires {
            let bs: Vec<String> = bs.iter().map(|b| quoted(b)).collect();
            toml.push_str(&format!("[{}]\nrequires = [{}]\n", quoted(a), bs.join(", ")));
        }
        s.write("tree/service.toml", toml);
    }
    if t.overlapping_networks > 0 {
        let mut toml = String::new();
        for i in 0..t.overlapping_networks {
            toml.push_str(&format!("[networks.n{i}]\nsubnet = \"10.{}.0.0/16\"\n", i % 3));
        }
        s.write("tree/networks.toml", toml);
    }
}

fn check_contract(t: &Tree) -> Result<(), TestCaseError> {
    let s = Setup::new();
    plant(&s, t);
    let r = generate(&s, &s.path("hlsys.toml"));
    prop_assert!(
        r.code == 0 || r.code == 2,
        "exit {} (a signal is negative)\n{}",
        r.code,
        r.stderr
    );
    prop_assert!(r.wall < MAX_WALL, "took {:?}", r.wall);
    prop_assert!(r.rss_kib < MAX_RSS_KIB, "peak RSS {} KiB", r.rss_kib);
    prop_assert!(r.stderr.len() < MAX_LOG, "log of {} bytes", r.stderr.len());
    let mut channels = vec![("log", r.stderr.clone())];
    if r.code == 0 {
        for good in ["homelab-good-a.service", "homelab-good-b.service", "homelab.target"] {
            prop_assert!(s.normal().join(good).is_file(), "{good} missing\n{}", r.stderr);
        }
        for e in std::fs::read_dir(s.normal()).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                prop_assert!(text.len() < MAX_REPORT, "{} has {} bytes", p.display(), text.len());
                channels.push(("output", text));
            }
        }
    } else {
        prop_assert_eq!(std::fs::read_dir(s.normal()).unwrap().count(), 0, "exit 2 wrote files");
    }
    if std::env::var_os("HLSYS_PROPS_SHOW").is_some() {
        eprintln!("---- exit {}\n{}", r.code, r.stderr);
    }
    for (channel, text) in &channels {
        prop_assert!(!text.contains(MARK), "the secret is in the {channel}:\n{text}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        max_shrink_iters: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_generator_keeps_its_contract_on_any_tree(t in tree()) {
        check_contract(&t)?;
    }
}
