//! `hlsys network` and GPU runtime detection against a real dockerd (never mocks).
//!
//! Every network here is named `hlt<pid>-…`, labelled `io.hlsys.test=<pid>` (through the
//! config's labels) and lives in 10.251.0.0/16, so parallel tests and stale runs don't
//! collide; each test removes what it made, and the first test sweeps leftovers of
//! crashed runs.
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Once;
use std::time::Duration;

use serde_json::Value;

const TEST_LABEL: &str = "io.hlsys.test";

fn ready() -> bool {
    if !common::require_root_and(&["docker", "dockerd"]) {
        return false;
    }
    common::ensure_dockerd();
    sweep_stale();
    true
}

fn pid() -> String {
    std::process::id().to_string()
}

/// `hlt<pid>-<tag>`: unique per test process.
fn name(tag: &str) -> String {
    format!("hlt{}-{tag}", pid())
}

/// Whether a test label names a run that is over: not this process, and no process with
/// that pid alive. (A second run of this file at the same time — another checkout on the
/// same engine — must keep its networks: removing them mid-test made its race test see
/// its network "exist 0 times".)
fn stale(label_pid: &str) -> bool {
    label_pid != pid() && !Path::new("/proc").join(label_pid).exists()
}

/// Removes test networks and containers left by earlier (crashed) runs of this file.
fn sweep_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let (_, out, _) = docker(&["ps", "-aq", "--filter", &format!("label={TEST_LABEL}")]);
        for id in out.split_whitespace() {
            let (_, l, _) = docker(&[
                "inspect",
                "-f",
                &format!("{{{{index .Config.Labels \"{TEST_LABEL}\"}}}}"),
                id,
            ]);
            if stale(l.trim()) {
                docker(&["rm", "-f", id]);
            }
        }
        let (_, out, _) = docker(&["network", "ls", "-q", "--filter", &format!("label={TEST_LABEL}")]);
        for id in out.split_whitespace() {
            let (_, l, _) = docker(&[
                "network",
                "inspect",
                "-f",
                &format!("{{{{index .Labels \"{TEST_LABEL}\"}}}}"),
                id,
            ]);
            if stale(l.trim()) {
                docker(&["network", "rm", id]);
            }
        }
    });
}

fn docker(args: &[&str]) -> (ExitStatus, String, String) {
    common::run(Command::new("docker").args(args))
}

fn docker_ok(args: &[&str]) -> String {
    common::run_ok(Command::new("docker").args(args)).0
}

/// IDs of the networks named exactly `name` (Docker's name filter matches substrings).
fn ids(name: &str) -> Vec<String> {
    let out = docker_ok(&[
        "network",
        "ls",
        "--no-trunc",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.ID}} {{.Name}}",
    ]);
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, n)| *n == name)
        .map(|(id, _)| id.to_string())
        .collect()
}

fn inspect(name_or_id: &str) -> Value {
    let out = docker_ok(&["network", "inspect", name_or_id]);
    serde_json::from_str::<Value>(&out).unwrap()[0].clone()
}

/// Removes the named networks (all duplicates) and containers when dropped.
struct Cleanup {
    networks: Vec<String>,
    containers: Vec<String>,
}

fn cleanup(networks: &[&String], containers: &[&String]) -> Cleanup {
    Cleanup {
        networks: networks.iter().map(|s| s.to_string()).collect(),
        containers: containers.iter().map(|s| s.to_string()).collect(),
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            docker(&["rm", "-f", c]);
        }
        for n in &self.networks {
            for id in ids(n) {
                docker(&["network", "rm", &id]);
            }
        }
    }
}

/// A config file declaring `nets` as (name, extra TOML lines), each with the test label.
fn config(dir: &Path, nets: &[(&str, &str)]) -> PathBuf {
    let mut text = format!("stacks_dir = \"{}\"\n", dir.join("tree").display());
    for (n, extra) in nets {
        text.push_str(&format!(
            "[networks.{n}]\n{extra}\nlabels = {{ \"{TEST_LABEL}\" = \"{}\" }}\n",
            pid()
        ));
    }
    let p = dir.join("hlsys.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn hlsys(cfg: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    common::run(Command::new(env!("CARGO_BIN_EXE_hlsys")).arg("-c").arg(cfg).args(args))
}

/// Runs `hlsys … --json` and parses stdout.
fn hlsys_json(cfg: &Path, args: &[&str]) -> (ExitStatus, Value, String) {
    let (st, out, err) = hlsys(cfg, args);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}\n{err}"));
    (st, v, err)
}

fn result<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report:#}"))
}

#[test]
fn ensure_creates_with_labels_is_idempotent_and_status_shows_orphans() {
    if !ready() {
        return;
    }
    let (a, b) = (name("idem-a"), name("idem-b"));
    let dir = tempfile::tempdir().unwrap();
    let _c = cleanup(&[&a, &b], &[]);
    let cfg = config(
        dir.path(),
        &[
            (
                &a,
                "subnet = \"10.251.10.0/24\"\ngateway = \"10.251.10.1\"\ninternal = true",
            ),
            (&b, ""),
        ],
    );

    let (st, dry, _) = hlsys_json(&cfg, &["network", "ensure", "--dry-run", "--json"]);
    assert!(st.success());
    assert_eq!(result(&dry, &a)["outcome"], "would-create");
    assert!(ids(&a).is_empty() && ids(&b).is_empty(), "dry run created something");

    let (st, first, err) = hlsys_json(&cfg, &["network", "ensure", "--json"]);
    assert!(st.success(), "{err}");
    assert_eq!(result(&first, &a)["outcome"], "created");
    assert_eq!(result(&first, &b)["outcome"], "created");
    let n = inspect(&a);
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.251.10.0/24");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.251.10.1");
    assert_eq!(n["Internal"], true);
    assert_eq!(n["Labels"]["io.hlsys.managed"], "true");
    assert_eq!(n["Labels"][TEST_LABEL], pid());

    let (st, again, _) = hlsys_json(&cfg, &["network", "ensure", "--json"]);
    assert!(st.success());
    for (net, r) in [(&a, &first), (&b, &first)] {
        assert_eq!(result(&again, net)["outcome"], "exists");
        assert_eq!(
            result(&again, net)["id"],
            result(r, net)["id"],
            "id changed on a second run"
        );
    }
    assert_eq!(ids(&a).len(), 1);

    // Human output: a table, no colour when stdout is not a terminal.
    let (st, out, _) = hlsys(&cfg, &["network", "status"]);
    assert!(st.success(), "{out}");
    assert!(out.starts_with("NETWORK") && !out.contains('\x1b'), "{out}");

    // b dropped from the config: status still lists it, as a managed orphan.
    let cfg = config(
        dir.path(),
        &[(
            &a,
            "subnet = \"10.251.10.0/24\"\ngateway = \"10.251.10.1\"\ninternal = true",
        )],
    );
    let (st, out, err) = hlsys(&cfg, &["network", "status", "--json"]);
    assert!(st.success(), "{out}{err}");
    let status: Vec<Value> = serde_json::from_str(&out).unwrap();
    let orphan = status.iter().find(|s| s["name"] == b.as_str()).expect("orphan listed");
    assert_eq!(orphan["configured"], false);
    assert_eq!(orphan["managed"], true);
    let mine = status.iter().find(|s| s["name"] == a.as_str()).unwrap();
    assert_eq!(mine["configured"], true);
    assert_eq!(mine["drift"], Value::Array(vec![]));
}

#[test]
fn eight_concurrent_ensures_leave_exactly_one_network_per_name() {
    if !ready() {
        return;
    }
    // One with a fixed subnet (the engine's IPAM refuses the second pool) and one without
    // (the engine happily creates duplicates, which the runs must settle).
    let (s, a) = (name("race-subnet"), name("race-auto"));
    let dir = tempfile::tempdir().unwrap();
    let _c = cleanup(&[&s, &a], &[]);
    let cfg = config(dir.path(), &[(&s, "subnet = \"10.251.20.0/24\""), (&a, "")]);
    for round in 0..3 {
        let children: Vec<_> = (0..8)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_hlsys"))
                    .arg("-c")
                    .arg(&cfg)
                    .args(["network", "ensure", "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut created = HashMap::<String, usize>::new();
        for c in children {
            let out = c.wait_with_output().unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert!(
                out.status.success(),
                "round {round}: {}\n{stdout}\n{stderr}",
                out.status
            );
            let v: Value = serde_json::from_str(&stdout).unwrap();
            for n in v["networks"].as_array().unwrap() {
                if n["outcome"] == "created" {
                    *created.entry(n["name"].as_str().unwrap().to_string()).or_default() += 1;
                }
            }
        }
        for n in [&s, &a] {
            assert_eq!(ids(n).len(), 1, "round {round}: {n} exists {} times", ids(n).len());
            // Someone created it. Who created the survivor cannot always be told: Docker
            // lists a network a moment after creating it, so two runs can each see only
            // their own and both report "created" (the end state above is what counts).
            assert!(
                (1..=8).contains(&created.get(n.as_str()).copied().unwrap_or(0)),
                "round {round}: {created:?}"
            );
        }
        let (st, v, _) = hlsys_json(&cfg, &["network", "ensure", "--json"]);
        assert!(st.success());
        assert_eq!(result(&v, &a)["outcome"], "exists");
        for n in [&s, &a] {
            for id in ids(n) {
                docker_ok(&["network", "rm", &id]);
            }
        }
    }
}

#[test]
fn drift_on_an_in_use_network_is_reported_and_never_touched() {
    if !ready() {
        return;
    }
    let (net, foreign, ctr) = (name("drift"), name("foreign"), name("drift-bb"));
    let dir = tempfile::tempdir().unwrap();
    let _c = cleanup(&[&net, &foreign], &[&ctr]);
    let cfg = config(
        dir.path(),
        &[(&net, "subnet = \"10.251.30.0/24\"\ngateway = \"10.251.30.1\"")],
    );
    let (st, _, err) = hlsys(&cfg, &["network", "ensure"]);
    assert!(st.success(), "{err}");
    let id = ids(&net)[0].clone();
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &ctr,
        "--label",
        &format!("{TEST_LABEL}={}", pid()),
        "--network",
        &net,
        "local/busybox:latest",
        "sleep",
        "600",
    ]);

    // The config changes under the running container.
    let wanted = "subnet = \"10.251.30.0/24\"\ngateway = \"10.251.30.254\"\ninternal = true";
    let cfg = config(dir.path(), &[(&net, wanted)]);
    for args in [
        &["network", "ensure", "--json"][..],
        &["network", "ensure", "--recreate", "--json"][..],
    ] {
        let (st, v, _) = hlsys_json(&cfg, args);
        assert_eq!(st.code(), Some(1), "{args:?}: drift left behind must fail: {v:#}");
        let r = result(&v, &net);
        assert_eq!(r["outcome"], "drift-kept", "{v:#}");
        let fields: Vec<&str> = r["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["gateway", "internal"]);
        assert_eq!(r["drift"][0]["found"], "10.251.30.1");
        assert_eq!(ids(&net), vec![id.clone()], "{args:?} touched an in-use network");
    }
    let (_, v, _) = hlsys_json(&cfg, &["network", "ensure", "--recreate", "--json"]);
    assert!(
        result(&v, &net)["notes"][0].as_str().unwrap().contains("in use by"),
        "{v:#}"
    );
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.Running}}", &ctr]).trim(), "true");
    let n = inspect(&net);
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.251.30.1");
    assert_eq!(n["Internal"], false);

    let (st, out, _) = hlsys(&cfg, &["network", "status", "--json"]);
    assert_eq!(st.code(), Some(1));
    let status: Vec<Value> = serde_json::from_str(&out).unwrap();
    let s = status.iter().find(|s| s["name"] == net.as_str()).unwrap();
    assert_eq!(s["containers"], Value::from(vec![ctr.clone()]));
    assert_eq!(s["drift"].as_array().unwrap().len(), 2);

    // Once unused, --recreate fixes it.
    docker_ok(&["rm", "-f", &ctr]);
    let (st, v, _) = hlsys_json(&cfg, &["network", "ensure", "--json"]);
    assert_eq!(st.code(), Some(1), "without --recreate drift stays: {v:#}");
    let (st, v, err) = hlsys_json(&cfg, &["network", "ensure", "--recreate", "--json"]);
    assert!(st.success(), "{v:#}{err}");
    assert_eq!(result(&v, &net)["outcome"], "recreated");
    let n = inspect(&net);
    assert_ne!(n["Id"], id.as_str());
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.251.30.254");
    assert_eq!(n["Internal"], true);
    let (st, v, _) = hlsys_json(&cfg, &["network", "ensure", "--json"]);
    assert!(st.success());
    assert_eq!(result(&v, &net)["outcome"], "exists");

    // A network hlsys did not create is never removed, even unused and with --recreate.
    docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.251.31.0/24",
        "--label",
        &format!("{TEST_LABEL}={}", pid()),
        &foreign,
    ]);
    let fid = ids(&foreign)[0].clone();
    let cfg = config(
        dir.path(),
        &[(&foreign, "subnet = \"10.251.31.0/24\"\ninternal = true")],
    );
    let (st, v, _) = hlsys_json(&cfg, &["network", "ensure", "--recreate", "--json"]);
    assert_eq!(st.code(), Some(1));
    let r = result(&v, &foreign);
    assert_eq!(r["outcome"], "drift-kept");
    assert!(
        r["notes"][0].as_str().unwrap().contains("not managed by hlsys"),
        "{v:#}"
    );
    assert_eq!(ids(&foreign), vec![fid]);
}

#[test]
fn overlaps_are_refused_before_anything_is_created() {
    if !ready() {
        return;
    }
    let nets: Vec<String> = ["ov1", "ov2", "ov3", "ov4", "ov5", "ov-other"]
        .iter()
        .map(|t| name(t))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let _c = cleanup(&nets.iter().collect::<Vec<_>>(), &[]);
    let none_exist = |names: &[&String]| names.iter().all(|n| ids(n).is_empty());

    // Two configured subnets overlapping: neither (nor the innocent third) is created.
    let cfg = config(
        dir.path(),
        &[
            (&nets[0], "subnet = \"10.251.40.0/24\""),
            (&nets[1], "subnet = \"10.251.40.128/25\""),
            (&nets[2], "subnet = \"10.251.41.0/24\""),
        ],
    );
    let (st, out, err) = hlsys(&cfg, &["network", "ensure"]);
    assert_eq!(st.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("overlap") && err.contains("no network was created"),
        "{err}"
    );
    assert!(none_exist(&[&nets[0], &nets[1], &nets[2]]));
    // check reports it too, and a dry run refuses the same way.
    let (st, v, _) = hlsys_json(&cfg, &["network", "ensure", "--dry-run", "--json"]);
    assert_eq!(st.code(), Some(1));
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v:#}");

    // Overlapping another Docker network (a different name).
    docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.251.42.0/24",
        "--label",
        &format!("{TEST_LABEL}={}", pid()),
        &nets[5],
    ]);
    let cfg = config(dir.path(), &[(&nets[3], "subnet = \"10.251.42.0/25\"")]);
    let (st, _, err) = hlsys(&cfg, &["network", "ensure"]);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains(&format!("overlaps Docker network {}", nets[5])), "{err}");
    assert!(none_exist(&[&nets[3]]));

    // Overlapping a host route (from a fixture root: wg0 holds 10.251.43.0/24).
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("proc/net")).unwrap();
    std::fs::write(
        root.join("proc/net/route"),
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         wg0\t002BFB0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
    )
    .unwrap();
    let cfg = config(dir.path(), &[(&nets[4], "subnet = \"10.251.43.0/24\"")]);
    let (st, _, err) = hlsys(&cfg, &["network", "ensure", "--root", root.to_str().unwrap()]);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("host route 10.251.43.0/24 on wg0"), "{err}");
    assert!(none_exist(&[&nets[4]]));
    // The real host has no such route: created.
    let (st, _, err) = hlsys(&cfg, &["network", "ensure"]);
    assert!(st.success(), "{err}");
    assert_eq!(ids(&nets[4]).len(), 1);
}

#[test]
fn duplicates_left_behind_are_settled_to_the_oldest() {
    if !ready() {
        return;
    }
    let net = name("dup");
    let dir = tempfile::tempdir().unwrap();
    let _c = cleanup(&[&net], &[]);
    let rt = hlsys::docker::runtime().unwrap();
    let d = rt.block_on(hlsys::docker::connect()).unwrap();
    let create = |managed: bool| {
        let mut labels = HashMap::from([(TEST_LABEL.to_string(), pid())]);
        if managed {
            labels.insert("io.hlsys.managed".into(), "true".into());
        }
        let req = bollard::models::NetworkCreateRequest {
            name: net.clone(),
            labels: Some(labels),
            ..Default::default()
        };
        rt.block_on(d.create_network(req)).map(|r| r.id)
    };
    let oldest = create(true).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let Ok(foreign) = create(false) else {
        // Engines from 25 on refuse duplicate names outright: nothing to settle.
        eprintln!("SKIP: this engine refuses duplicate network names");
        return;
    };
    std::thread::sleep(Duration::from_millis(20));
    let newer = create(true).unwrap();
    assert_eq!(ids(&net).len(), 3);

    let cfg = config(dir.path(), &[(&net, "")]);
    let (st, v, err) = hlsys_json(&cfg, &["network", "ensure", "--json"]);
    assert!(st.success(), "{v:#}{err}");
    let r = result(&v, &net);
    assert_eq!(r["id"], oldest.as_str());
    let notes = r["notes"].to_string();
    assert!(
        notes.contains(&format!("removed duplicate {}", &newer[..12])),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("duplicate {} is not managed", &foreign[..12])),
        "{notes}"
    );
    let mut left = ids(&net);
    left.sort();
    let mut want = vec![oldest, foreign];
    want.sort();
    assert_eq!(left, want, "the newer managed duplicate goes, the unmanaged one stays");
}

/// A second dockerd with its own roots and socket, `nvidia` registered as a runtime.
struct SecondDaemon {
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl SecondDaemon {
    fn start() -> SecondDaemon {
        let dir = PathBuf::from(format!("/tmp/hlt-dd-{}", pid()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = SecondDaemon { dir, child: None };
        let log = std::fs::File::create(d.dir.join("log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.dir.join("data"))
            .arg("--exec-root")
            .arg(d.dir.join("exec"))
            .arg("--pidfile")
            .arg(d.dir.join("docker.pid"))
            .arg("-H")
            .arg(d.host())
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--add-runtime",
                "nvidia=/bin/true",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        d.child = Some(child);
        for _ in 0..300 {
            if common::run(Command::new("docker").args(["-H", &d.host(), "info"]))
                .0
                .success()
            {
                return d;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "second dockerd did not come up:\n{}",
            std::fs::read_to_string(d.dir.join("log")).unwrap_or_default()
        );
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }
}

impl Drop for SecondDaemon {
    fn drop(&mut self) {
        // Only the daemon this test started; SIGTERM lets it stop its containerd too.
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn gpu_detection_sees_the_nvidia_runtime_through_the_api() {
    if !ready() {
        return;
    }
    let second = SecondDaemon::start();
    let rt = hlsys::docker::runtime().unwrap();
    let runtimes = rt.block_on(async {
        let d = hlsys::docker::connect_to(&second.host()).await.unwrap();
        hlsys::gpu::runtimes(&d).await.unwrap()
    });
    assert!(runtimes.contains(&"nvidia".to_string()), "{runtimes:?}");
    let main = rt.block_on(async {
        hlsys::gpu::runtimes(&hlsys::docker::connect().await.unwrap())
            .await
            .unwrap()
    });
    assert!(
        !main.contains(&"nvidia".to_string()),
        "the test host has an nvidia runtime: {main:?}"
    );

    // End to end: a stack with `runtime: nvidia` works against the second daemon only.
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("tree/gpu/llm");
    std::fs::create_dir_all(&stack).unwrap();
    std::fs::write(
        stack.join("compose.yaml"),
        "services:\n  llm:\n    image: local/busybox:latest\n    runtime: nvidia\n",
    )
    .unwrap();
    let cfg = config(dir.path(), &[]);
    let status = |host: &str| {
        let (st, out, err) = common::run(
            Command::new(env!("CARGO_BIN_EXE_hlsys"))
                .env("DOCKER_HOST", host)
                .arg("-c")
                .arg(&cfg)
                .args(["gpu", "status", "--json"]),
        );
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        (st, v)
    };
    let (st, v) = status(&second.host());
    assert!(st.success(), "{v:#}");
    assert_eq!(v["stacks"][0]["stack"], "gpu-llm");
    assert_eq!(v["stacks"][0]["mechanisms"][0]["mechanism"], "runtime");
    assert_eq!(v["stacks"][0]["mechanisms"][0]["works"], true);
    let (st, v) = status("unix:///var/run/docker.sock");
    assert_eq!(st.code(), Some(1), "{v:#}");
    assert_eq!(v["stacks"][0]["mechanisms"][0]["works"], false);
    // check --gpu agrees, and runs nothing else.
    let (st, out, _) = common::run(
        Command::new(env!("CARGO_BIN_EXE_hlsys"))
            .env("DOCKER_HOST", second.host())
            .arg("-c")
            .arg(&cfg)
            .args(["check", "--gpu", "--json"]),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(st.success(), "{v:#}");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["gpu:gpu-llm"]);
}
