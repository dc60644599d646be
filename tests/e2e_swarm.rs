//! `hlsys swarm` end to end: a single-node swarm (`docker swarm init`) in a test machine
//! (tests/harness/machine.sh: real systemd, real dockerd, only loopback) deploys the
//! swarm tree (tests/fixtures/trees/swarm) layer by layer.
//!
//! Checked: the networks of networks.toml exist as attachable overlays as configured; no
//! genai task is created before every database task is running, which Swarm allows only
//! once healthy (Docker's own task timestamps); the GPU stack, which no node can take, is
//! reported unschedulable within seconds (not after the layer's 300 s timeout) while the
//! rest converges, the stack requiring it is held back, and `swarm status --json` shows
//! it; a second deploy changes nothing (service versions and tasks as they were) and
//! returns in seconds; `swarm rm` removes every service and keeps the named volume.
//!
//! Needs root, systemd-nspawn and Docker; run under `flock /run/hlsys-docker-tests.lock`.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

use common::{repo_path, require_root_and, Machine};

const TREE: &str = "tests/fixtures/trees/swarm";

fn prerequisites() -> bool {
    require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd"])
}

/// hlsys, the config and the tree installed before boot; no generator (swarm mode).
fn pre_boot() -> String {
    let q = |p: &std::path::Path| format!("'{}'", p.display());
    format!(
        "install -D -m755 {hlsys} \"$ROOT/usr/bin/hlsys\"
install -D -m644 {cfg} \"$ROOT/etc/hlsys/hlsys.toml\"
rm -rf \"$ROOT/srv/compose\" && mkdir -p \"$ROOT/srv/compose\"
cp -R {tree}/. \"$ROOT/srv/compose/\"
",
        hlsys = q(std::path::Path::new(env!("CARGO_BIN_EXE_hlsys"))),
        cfg = q(&repo_path(TREE).join("hlsys.toml")),
        tree = q(&repo_path(TREE)),
    )
}

/// Runs `hlsys ARGS --json` inside; (exit code, parsed stdout).
fn hlsys_json(m: &Machine, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["hlsys"];
    all.extend_from_slice(args);
    all.push("--json");
    let (status, out, err) = m.exec(&all);
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{all:?}: {e}\nstdout: {out}\nstderr: {err}"));
    (status.code().unwrap_or(-1), doc)
}

fn stack<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == id)
        .unwrap_or_else(|| panic!("no stack {id} in {doc:#}"))
}

/// RFC 3339 with nanoseconds → (date-time, nanos), comparable.
fn instant(ts: &str) -> (String, u32) {
    let ts = ts.trim_end_matches('Z');
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let nanos = format!("{frac:0<9}")[..9].parse().unwrap();
    (secs.to_string(), nanos)
}

/// Every task of the stack's services: (created_at, since, state).
fn tasks(doc: &Value, id: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for svc in stack(doc, id)["services"].as_array().unwrap() {
        for t in svc["tasks"].as_array().unwrap() {
            let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
            out.push((s("created_at"), s("since"), s("state")));
        }
    }
    out
}

/// `docker service inspect` of every service: name → (version index, running task ids).
fn service_versions(m: &Machine) -> BTreeMap<String, String> {
    let ids = m.exec_ok(&["docker", "service", "ls", "-q"]);
    let mut out = BTreeMap::new();
    for id in ids.split_whitespace() {
        let v = m.exec_ok(&[
            "docker",
            "service",
            "inspect",
            id,
            "--format",
            "{{.Spec.Name}} {{.Version.Index}}",
        ]);
        let tasks = m.exec_ok(&["docker", "service", "ps", "-q", "--filter", "desired-state=running", id]);
        let (name, version) = v.trim().split_once(' ').unwrap();
        out.insert(
            name.to_string(),
            format!("{version} {}", tasks.split_whitespace().collect::<Vec<_>>().join(",")),
        );
    }
    out
}

fn check_overlays(m: &Machine) {
    for (name, internal, subnet, gateway) in [
        ("proxy", "false", "172.21.0.0/24", "172.21.0.1"),
        ("database", "true", "172.21.2.0/24", "172.21.2.1"),
    ] {
        let f = "{{.Driver}} {{.Scope}} {{.Attachable}} {{.Internal}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{index .Labels \"io.hlsys.managed\"}}";
        let got = m.exec_ok(&["docker", "network", "inspect", name, "--format", f]);
        assert_eq!(
            got.trim(),
            format!("overlay swarm true {internal} {subnet} {gateway} true"),
            "network {name}"
        );
    }
}

#[test]
fn single_node_swarm_deploys_layer_by_layer() {
    if !prerequisites() {
        return;
    }
    let m = Machine::start("hlsys-swarm", Some(&pre_boot()));
    m.wait_docker();
    m.exec_ok(&["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"]);

    let (code, plan) = hlsys_json(&m, &["swarm", "plan"]);
    assert_eq!(code, 0, "{plan:#}");
    let ollama = plan["layers"][2]["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == "genai-ollama")
        .unwrap_or_else(|| panic!("{plan:#}"));
    assert_eq!(
        ollama["document"]["services"]["ollama"]["deploy"]["placement"]["constraints"][0],
        "node.labels.hlsys.gpu == true"
    );

    // The genai layer keeps the default timeout (300 s): the GPU stack, which no node
    // can take, must be reported as soon as Swarm says so, not after it.
    let t = std::time::Instant::now();
    let (code, deploy) = hlsys_json(&m, &["swarm", "deploy"]);
    let first = t.elapsed();
    println!(
        "MEASURE swarm_deploy_with_unschedulable_gpu_stack_s={:.1}",
        first.as_secs_f64()
    );
    assert_eq!(code, 1, "the GPU stack cannot converge: {deploy:#}");
    assert!(
        first.as_secs() < 60,
        "deploy waited {first:?} for a stack no node can take"
    );
    for id in ["panel", "database", "genai-embed", "genai-webui"] {
        assert_eq!(stack(&deploy, id)["outcome"], "converged", "{id}: {deploy:#}");
        assert_eq!(stack(&deploy, id)["action"], "deployed", "{id}");
    }
    let gpu = stack(&deploy, "genai-ollama");
    assert_eq!(gpu["outcome"], "unschedulable");
    let problems = gpu["problems"].to_string();
    assert!(problems.contains("no suitable node"), "{problems}");
    assert!(
        problems.contains("no node satisfies the placement of genai-ollama_ollama"),
        "{problems}"
    );
    assert!(problems.contains("labelled hlsys.gpu=true"), "{problems}");
    let agent = stack(&deploy, "genai-agent");
    assert_eq!(agent["outcome"], "held-back", "{agent:#}");
    assert!(agent["problems"].to_string().contains("genai-ollama"), "{agent:#}");
    check_overlays(&m);

    let (code, status) = hlsys_json(&m, &["swarm", "status"]);
    assert_eq!(code, 1);
    assert_eq!(stack(&status, "genai-ollama")["outcome"], "unschedulable");
    assert_eq!(stack(&status, "genai-agent")["outcome"], "absent");
    for svc in stack(&status, "database")["services"].as_array().unwrap() {
        assert_eq!(svc["tasks"][0]["health"], "healthy", "{svc:#}");
    }
    let pending = tasks(&status, "genai-ollama");
    assert!(pending.iter().any(|t| t.2 == "pending"), "{pending:?}");
    // Health gate: every database task turned running (= healthy: both have healthchecks)
    // before any genai task was created.
    let db_ready = tasks(&status, "database").iter().map(|t| instant(&t.1)).max().unwrap();
    for id in ["genai-embed", "genai-webui", "genai-ollama"] {
        for t in tasks(&status, id) {
            assert!(
                instant(&t.0) > db_ready,
                "{id} task created {} before database healthy {db_ready:?}",
                t.0
            );
        }
    }

    let before = service_versions(&m);
    let t = std::time::Instant::now();
    let (_, again) = hlsys_json(&m, &["swarm", "deploy"]);
    let second = t.elapsed();
    println!("MEASURE swarm_deploy_unchanged_s={:.1}", second.as_secs_f64());
    assert!(second.as_secs() < 30, "a deploy with nothing to change took {second:?}");
    for s in again["stacks"].as_array().unwrap() {
        if s["stack"] == "genai-agent" {
            assert_eq!(s["outcome"], "held-back", "{s:#}");
        } else {
            assert_eq!(s["action"], "unchanged", "{s:#}");
        }
    }
    assert_eq!(
        service_versions(&m),
        before,
        "a second deploy must not touch any service"
    );

    let (code, rm) = hlsys_json(&m, &["swarm", "rm"]);
    assert_eq!(code, 0, "{rm:#}");
    assert_eq!(m.exec_ok(&["docker", "service", "ls", "-q"]).trim(), "");
    let volumes = m.exec_ok(&["docker", "volume", "ls", "--format", "{{.Name}}"]);
    assert!(volumes.lines().any(|v| v == "database_pgdata"), "{volumes}");
}

/// Inside the machine: a second Docker engine in its own network namespace (`worker`),
/// joined to the machine's over a veth pair with test-only addresses, plays the second
/// node. The harness cannot boot two machines at once (they share the host's cgroup
/// tree), so the worker is an engine of its own — own netns, data root, exec root,
/// socket and containerd namespace — next to the manager's in one machine.
const TWO_NODES: &str = r#"set -e
ip netns add worker
ip link add hlsw0 type veth peer name hlsw1 netns worker
ip addr add 10.231.0.1/24 dev hlsw0 && ip link set hlsw0 up
ip -n worker addr add 10.231.0.2/24 dev hlsw1 && ip -n worker link set hlsw1 up && ip -n worker link set lo up
# The data root in the machine's mount namespace: containerd (shared) must see it.
mkdir -p /var/lib/docker-worker && mount -t tmpfs tmpfs /var/lib/docker-worker
systemd-run --quiet --unit=worker-dockerd nsenter --net=/run/netns/worker dockerd \
  --data-root /var/lib/docker-worker --exec-root /run/docker-worker --pidfile /run/docker-worker.pid \
  -H unix:///run/docker-worker.sock --containerd-namespace worker --containerd-plugins-namespace worker-plugins
W="docker -H unix:///run/docker-worker.sock"
for _ in $(seq 150); do $W info >/dev/null 2>&1 && break; sleep 0.2; done
bb=$(mktemp -d) && mkdir -p "$bb/bin" "$bb/tmp" && chmod 1777 "$bb/tmp" && cp /bin/busybox "$bb/bin/"
for a in sh sleep true echo touch test wget nc httpd cat; do ln -sf busybox "$bb/bin/$a"; done
tar -C "$bb" -c . | $W import - local/busybox:latest >/dev/null
docker swarm init --advertise-addr 10.231.0.1 >/dev/null
$W swarm join --token "$(docker swarm join-token -q worker)" --advertise-addr 10.231.0.2 10.231.0.1:2377 >/dev/null
node=$($W info --format '{{.Swarm.NodeID}}')
docker node update --label-add hlsys.gpu=true "$node" >/dev/null
echo "$node"
"#;

/// Node id of the task Swarm wants running for `service`.
fn task_node(m: &Machine, service: &str) -> String {
    let task = m.exec_ok(&[
        "docker",
        "service",
        "ps",
        "-q",
        "--filter",
        "desired-state=running",
        service,
    ]);
    let task = task
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no task of {service}"));
    m.exec_ok(&["docker", "inspect", "--format", "{{.NodeID}}", task])
        .trim()
        .to_string()
}

#[test]
fn two_node_swarm_runs_the_gpu_stack_on_the_labelled_worker() {
    if !prerequisites() {
        return;
    }
    let m = Machine::start("hlsys-swarm2", Some(&pre_boot()));
    m.wait_docker();
    let worker = m.exec_ok(&["bash", "-c", TWO_NODES]).trim().to_string();
    let manager = m
        .exec_ok(&["docker", "info", "--format", "{{.Swarm.NodeID}}"])
        .trim()
        .to_string();
    assert_ne!(worker, manager);

    let (code, deploy) = hlsys_json(&m, &["swarm", "deploy"]);
    assert_eq!(code, 0, "every stack converges with a GPU node: {deploy:#}");
    assert_eq!(stack(&deploy, "genai-ollama")["outcome"], "converged");
    assert_eq!(
        task_node(&m, "genai-ollama_ollama"),
        worker,
        "the GPU stack runs on the labelled worker"
    );
    let on_worker = m.exec_ok(&[
        "docker",
        "-H",
        "unix:///run/docker-worker.sock",
        "ps",
        "-q",
        "--filter",
        "label=com.docker.swarm.service.name=genai-ollama_ollama",
    ]);
    assert!(
        !on_worker.trim().is_empty(),
        "the worker's engine runs the ollama container"
    );
    // panel bind-mounts a directory of the tree, which only the manager has: pinned there.
    assert_eq!(task_node(&m, "panel_httpd"), manager);
}
