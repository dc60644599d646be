//! Synthetic stack trees for the benchmarks (included by benches/generator.rs and
//! benches/model.rs with `#[path]`).
//!
//! A tree of `n` stacks looks like a real homelab grown large: four layers (`infra`,
//! `data`, `apps`, `media`) with layer `.env` files, stacks both directly under a layer
//! and one group directory deeper, compose files with 2–3 default services (plus a
//! profiled one now and then) built from a YAML anchor and `<<` merge keys, `${VAR:-default}`
//! interpolation from the layered env files, external and project networks, bind mounts,
//! healthchecks, GPU stacks in all three Compose spellings, cross-stack dependencies in
//! `service.toml`, an `x-hlsys` block here and there, networks in both `hlsys.toml` and
//! `networks.toml`, and a config with layers, `env_files` and per-stack settings.
//!
//! Every stack is valid: [`SynthTree::expected_units`] units and no skipped stacks.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

pub const LAYERS: [&str; 4] = ["infra", "data", "apps", "media"];

/// What was written.
#[derive(Debug, Clone)]
pub struct SynthTree {
    /// The hlsys.toml to point `HLSYS_CONFIG` at.
    pub config: PathBuf,
    /// stacks_dir
    pub stacks_dir: PathBuf,
    pub stacks: usize,
    pub gpu_stacks: usize,
    pub disabled_stacks: usize,
    /// Stacks that wait for others (a layer after another, requires or wants): each has
    /// a preparation unit (core/src/units/prepare.rs).
    pub waiting_stacks: usize,
    /// Total bytes of compose files, for the record.
    pub compose_bytes: usize,
}

impl SynthTree {
    /// Stack services + preparation units + one target per layer + homelab.target +
    /// networks oneshot (+ the GPU oneshot when there is a GPU stack, enabled or not).
    pub fn expected_units(&self) -> usize {
        self.stacks + self.waiting_stacks + LAYERS.len() + 2 + usize::from(self.gpu_stacks > 0)
    }
}

struct StackSpec {
    i: usize,
    layer: &'static str,
    /// index inside its layer
    j: usize,
    rel: String,
    id: String,
}

fn spec(i: usize) -> StackSpec {
    let layer = LAYERS[i % LAYERS.len()];
    let j = i / LAYERS.len();
    // Half the stacks directly under the layer, half in group directories of up to 10.
    let rel = if j % 2 == 0 {
        format!("{layer}/s{i:04}")
    } else {
        format!("{layer}/g{:02}/s{i:04}", j / 20)
    };
    let id = rel.replace('/', "-");
    StackSpec { i, layer, j, rel, id }
}

fn stack_id(i: usize) -> String {
    spec(i).id
}

/// Index of the stack with position `j` in layer `l`, if the tree has it.
fn index_of(l: usize, j: usize, n: usize) -> Option<usize> {
    let i = j * LAYERS.len() + l;
    (i < n).then_some(i)
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn gpu_kind(i: usize) -> Option<usize> {
    // 1 in 25 stacks wants a GPU; the three spellings take turns.
    (i % 25 == 3).then_some((i / 25) % 3)
}

fn disabled(s: &StackSpec) -> bool {
    // Only media stacks, which nothing depends on, are switched off.
    s.layer == "media" && s.j % 25 == 7
}

fn compose_yaml(s: &StackSpec) -> String {
    let net = format!("{}-net", s.layer);
    let mut y = String::new();
    let _ = writeln!(y, "# synthetic stack {} ({})", s.id, s.rel);
    y.push_str(
        "x-common: &common\n  restart: \"no\"                 # systemd owns restarts\n  environment:\n    TZ: ${TZ:-UTC}\n    DOMAIN: ${DOMAIN:-home.arpa}\n    LOG_LEVEL: ${LOG_LEVEL:-info}\n",
    );
    let _ = writeln!(
        y,
        "  labels:\n    com.example.stack: \"{}\"\n    com.example.layer: \"{}\"",
        s.id, s.layer
    );
    y.push('\n');
    if s.i % 7 == 0 {
        // Interpolated x-hlsys: the default keeps the stack enabled.
        y.push_str("x-hlsys:\n  enabled: ${STACK_ENABLED:-true}\n\n");
    }
    y.push_str("services:\n");
    // app: published port, bind mounts, healthcheck, maybe a GPU.
    let _ = writeln!(y, "  app:\n    <<: *common");
    let _ = writeln!(
        y,
        "    image: ${{REGISTRY:-docker.io/library}}/app{}:${{IMAGE_TAG:-1.0.0}}",
        s.i
    );
    let _ = writeln!(
        y,
        "    ports:\n      - \"${{BIND_IP:-127.0.0.1}}:${{APP_PORT:-{}}}:8080\"",
        20000 + s.i
    );
    if s.i % 3 == 0 {
        let _ = writeln!(y, "      - \"{}:9100/udp\"", 40000 + s.i);
    }
    y.push_str(
        "    volumes:\n      - ./data:/data\n      - app-data:/var/lib/app\n      - ${CONFIG_DIR:-./config}:/config:ro\n",
    );
    let _ = writeln!(y, "    networks: [proxy, {net}]");
    y.push_str(
        "    healthcheck:\n      test: [\"CMD-SHELL\", \"wget -qO- http://localhost:8080/health || exit 1\"]\n      interval: ${HEALTH_INTERVAL:-10s}\n      retries: 5\n",
    );
    match gpu_kind(s.i) {
        Some(0) => y.push_str(
            "    deploy:\n      resources:\n        reservations:\n          devices:\n            - driver: nvidia\n              count: all\n              capabilities: [gpu]\n",
        ),
        Some(1) => y.push_str("    gpus: all\n"),
        Some(_) => y.push_str("    runtime: nvidia\n    environment:\n      NVIDIA_VISIBLE_DEVICES: all\n"),
        None => {}
    }
    // worker: depends on app being healthy, joins the project network too.
    let _ = writeln!(y, "  worker:\n    <<: *common");
    let _ = writeln!(
        y,
        "    image: ${{REGISTRY:-docker.io/library}}/worker{}:${{IMAGE_TAG:-1.0.0}}",
        s.i
    );
    y.push_str("    command: [\"worker\", \"--queue\", \"${QUEUE:-default}\", \"--concurrency\", \"${WORKERS:-4}\"]\n");
    y.push_str("    depends_on:\n      app:\n        condition: service_healthy\n");
    let _ = writeln!(y, "    networks: [{net}, backend]");
    if s.i % 2 == 0 {
        y.push_str("  cache:\n    <<: *common\n    image: redis:${REDIS_TAG:-7-alpine}\n    networks: [backend]\n    volumes: [\"cache-data:/data\"]\n");
    }
    if s.i % 4 == 1 {
        y.push_str("  debug:\n    <<: *common\n    image: busybox:latest\n    profiles: [debug]\n    network_mode: \"service:app\"\n");
    }
    y.push_str("\nvolumes:\n  app-data:\n");
    if s.i % 2 == 0 {
        y.push_str("  cache-data:\n");
    }
    let _ = writeln!(
        y,
        "\nnetworks:\n  proxy: {{ external: true }}\n  {net}: {{ external: true }}\n  backend: {{}}"
    );
    y
}

/// Writes a tree of `n` stacks (n ≥ 4) with its config under `dir`.
pub fn write_tree(dir: &Path, n: usize) -> SynthTree {
    assert!(n >= LAYERS.len(), "need at least one stack per layer");
    let stacks_dir = dir.join("srv/compose");
    let etc = dir.join("etc/hlsys");
    fs::create_dir_all(&stacks_dir).unwrap();

    write(
        &etc.join("global.env"),
        "# global environment\nTZ=Europe/Berlin\nDOMAIN=home.arpa\nREGISTRY=ghcr.io/example\n",
    );

    // Layer .env files.
    for (k, layer) in LAYERS.iter().enumerate() {
        write(
            &stacks_dir.join(layer).join(".env"),
            &format!(
                "# layer {layer}\nIMAGE_TAG=2.{k}.0\nLOG_LEVEL=\"${{LOG_LEVEL:-warn}}\"\nCONFIG_DIR=/srv/config/{layer}\nexport WORKERS={}\n",
                k + 2
            ),
        );
    }

    let mut gpu_stacks = 0;
    let mut disabled_stacks = 0;
    let mut waiting_stacks = 0;
    let mut compose_bytes = 0;
    let mut service_toml = String::from("# cross-stack dependencies\n");
    let mut stacks_cfg = String::new();
    for i in 0..n {
        let s = spec(i);
        let d = stacks_dir.join(&s.rel);
        let y = compose_yaml(&s);
        compose_bytes += y.len();
        write(&d.join("compose.yaml"), &y);
        if i % 5 == 0 {
            write(
                &d.join(".env"),
                &format!("APP_PORT={}\nQUEUE={}-jobs # inline comment\n", 30000 + i, s.id),
            );
        }
        if i % 10 == 0 {
            write(&d.join(".env.local"), "BIND_IP=0.0.0.0\nHEALTH_INTERVAL='30s'\n");
        }
        if gpu_kind(i).is_some() {
            gpu_stacks += 1;
        }

        // Dependencies: apps require the data stack at the same position; every third
        // stack wants its predecessor in its layer; some media stacks want a data stack.
        let mut requires = Vec::new();
        let mut wants = Vec::new();
        if s.layer == "apps" {
            if let Some(d) = index_of(1, s.j, n) {
                requires.push(stack_id(d));
            }
        }
        if s.j > 0 && s.j % 3 == 0 {
            let l = LAYERS.iter().position(|l| *l == s.layer).unwrap();
            wants.push(stack_id(index_of(l, s.j - 1, n).unwrap()));
        }
        if s.layer == "media" && s.j % 5 == 0 {
            if let Some(d) = index_of(1, s.j, n) {
                wants.push(stack_id(d));
            }
        }
        if s.layer != "infra" || !requires.is_empty() || !wants.is_empty() {
            waiting_stacks += 1;
        }
        if !requires.is_empty() || !wants.is_empty() {
            let _ = writeln!(service_toml, "[{}]", s.id);
            if !requires.is_empty() {
                let _ = writeln!(service_toml, "requires = {requires:?}");
            }
            if !wants.is_empty() {
                let _ = writeln!(service_toml, "wants = {wants:?}");
            }
        }

        let dis = disabled(&s);
        if dis {
            disabled_stacks += 1;
        }
        if dis || gpu_kind(i).is_some() {
            let _ = writeln!(stacks_cfg, "\n[stacks.{}]", s.id);
            if dis {
                stacks_cfg.push_str("enabled = false\n");
            }
            if gpu_kind(i).is_some() {
                stacks_cfg.push_str("timeout_start_sec = 900\n");
            }
        }
    }
    write(&stacks_dir.join("service.toml"), &service_toml);

    let mut nets = String::from("# shared Docker networks\n");
    for (k, layer) in LAYERS.iter().enumerate() {
        let _ = writeln!(
            nets,
            "[networks.{layer}-net]\ninternal = {}\nsubnet = \"172.30.{k}.0/24\"\ngateway = \"172.30.{k}.1\"\nlabels = {{ layer = \"{layer}\" }}\n",
            *layer != "infra"
        );
    }
    write(&stacks_dir.join("networks.toml"), &nets);

    let config = etc.join("hlsys.toml");
    let mut cfg = format!(
        "stacks_dir = \"{}\"\nunit_prefix = \"homelab\"\nenv_files = [\"-global.env\", \"-/nonexistent/optional.env\"]\nhlsys_path = \"/usr/bin/hlsys\"\n\n",
        stacks_dir.display()
    );
    // The trees belong to whoever runs the bench: trust them as the tests do
    // (tests/common/mod.rs, trusting_runner), so the checks still run and cost what they cost.
    let uid = nix::unistd::geteuid().as_raw();
    if uid != 0 {
        let gid = nix::unistd::getegid().as_raw();
        cfg.insert_str(0, &format!("trusted_owner = {uid}\ntrusted_group = {gid}\n"));
    }
    cfg.push_str(
        "[layers.infra]\n\n[layers.data]\nafter = [\"infra\"]\n\n[layers.apps]\nafter = [\"infra\"]\nrequires = [\"data\"]\n\n[layers.media]\nafter = [\"infra\"]\n\n",
    );
    cfg.push_str(
        "[networks.proxy]\ndriver = \"bridge\"\nsubnet = \"172.29.0.0/24\"\ngateway = \"172.29.0.1\"\nlabels = { purpose = \"proxy\" }\n",
    );
    cfg.push_str(&stacks_cfg);
    write(&config, &cfg);

    SynthTree {
        config,
        stacks_dir,
        stacks: n,
        gpu_stacks,
        disabled_stacks,
        waiting_stacks,
        compose_bytes,
    }
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=100).
pub fn percentile<T: Copy>(sorted: &[T], p: usize) -> T {
    assert!(!sorted.is_empty());
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Whether the benchmark was started by `cargo bench` (which passes `--bench`) rather
/// than by `cargo test --benches`, which only wants a quick smoke run.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `HLSYS_BENCH_RUNS` overrides the number of measured runs.
pub fn runs(default: usize) -> usize {
    std::env::var("HLSYS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(default)
}
