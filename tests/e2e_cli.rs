//! `hlsys start|stop|restart|status|logs|enable|disable` against a real systemd 252 with
//! docker.service inside (tests/harness/machine.sh), with the systemctl binary removed
//! from the machine: everything goes over D-Bus.
//!
//! The machine boots without a config, so nothing of the tree starts at boot (the image
//! the stacks use is imported only once Docker is up); the test then installs the
//! config and the tree (tests/fixtures/trees/e2e: panel → database → genai) and runs
//! `hlsys reload`. That leaves homelab.target active from boot, which is exactly the case
//! where a plain start of it would pull in nothing new.

mod common;

use std::time::Instant;

use common::{repo_path, require_root_and, Machine};
use serde_json::Value;

const HLSYS: &str = env!("CARGO_BIN_EXE_hlsys");

fn prerequisites() -> bool {
    require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd"])
}

use common::Out;

/// A booted machine with hlsys, the generator, the config and the tree installed, and
/// no systemctl.
struct Lab {
    m: Machine,
}

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Lab {
    fn boot(prefix: &str, extra_tree: &[(&str, &str)]) -> Lab {
        let t0 = Instant::now();
        let pre_boot = format!(
            "install -D -m755 {} \"$ROOT/usr/bin/hlsys\"\n\
             install -D -m755 {} \"$ROOT/usr/lib/systemd/system-generators/hlsys-generator\"\n",
            HLSYS,
            common::generator_bin().display()
        );
        let m = Machine::start(prefix, Some(&pre_boot));
        // The harness waits for boot with `systemctl is-system-running`; from here on,
        // hlsys must do without it.
        m.exec_ok(&["rm", "-f", "/usr/bin/systemctl", "/bin/systemctl"]);
        let (st, _, _) = m.exec(&["sh", "-c", "command -v systemctl"]);
        assert!(!st.success(), "systemctl is still there");
        m.wait_docker();
        m.copy_in(repo_path("tests/fixtures/trees/e2e"), "/srv/compose");
        for (src, dst) in extra_tree {
            m.copy_in(repo_path(src), dst);
        }
        m.copy_in(
            repo_path("tests/fixtures/trees/e2e/hlsys.toml"),
            "/etc/hlsys/hlsys.toml",
        );
        let lab = Lab { m };
        lab.hlsys(&["reload"]).ok("hlsys reload");
        eprintln!("machine ready in {:.1}s", t0.elapsed().as_secs_f64());
        lab
    }

    fn run(&self, args: &[&str]) -> Out {
        let (status, stdout, stderr) = self.m.exec(args);
        Out { status, stdout, stderr }
    }

    /// `hlsys ARGS` as root, in a clean environment, never hanging the test.
    fn hlsys(&self, args: &[&str]) -> Out {
        let t0 = Instant::now();
        let mut a = vec!["timeout", "180", "env", "-i", PATH, "hlsys"];
        a.extend_from_slice(args);
        let o = self.run(&a);
        eprintln!(
            "hlsys {} → {} in {:.2}s",
            args.join(" "),
            o.status,
            t0.elapsed().as_secs_f64()
        );
        o
    }

    /// `hlsys ARGS` as nobody (uid/gid 65534, no supplementary groups).
    fn hlsys_as_nobody(&self, env: &[&str], args: &[&str]) -> Out {
        let mut a = vec![
            "timeout",
            "60",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            "-i",
            PATH,
        ];
        a.extend_from_slice(env);
        a.push("hlsys");
        a.extend_from_slice(args);
        self.run(&a)
    }

    /// A u64 property of a unit, read with busctl (only the test uses it).
    fn timestamp(&self, unit: &str, prop: &str) -> u64 {
        let path = format!("/org/freedesktop/systemd1/unit/{}", escape(unit));
        let out = self
            .run(&[
                "busctl",
                "get-property",
                "org.freedesktop.systemd1",
                &path,
                "org.freedesktop.systemd1.Unit",
                prop,
            ])
            .ok("busctl get-property");
        // "t 1714557600000000"
        out.stdout
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{}", out.stdout))
    }

    fn status_json(&self) -> Value {
        self.hlsys(&["status", "--json"]).ok("hlsys status --json").json()
    }
}

fn escape(unit: &str) -> String {
    unit.bytes()
        .enumerate()
        .map(|(i, b)| {
            if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
                (b as char).to_string()
            } else {
                format!("_{b:02x}")
            }
        })
        .collect()
}

fn layer<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["layers"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == name))
        .unwrap_or_else(|| panic!("no layer {name} in {doc:#}"))
}

fn stack<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["stacks"].as_array().into_iter().flatten())
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no stack {id} in {doc:#}"))
}

/// (unit, job, result) of every job in a start/stop/restart --json document.
fn results(doc: &Value) -> Vec<(String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string();
    doc["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {doc:#}"))
        .iter()
        .map(|r| (s(&r["unit"]), s(&r["job"]), s(&r["result"])))
        .collect()
}

fn has(res: &[(String, String, String)], unit: &str, job: &str, result: &str) -> bool {
    res.iter().any(|(u, j, r)| u == unit && j == job && r == result)
}

fn line_index(text: &str, pred: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines().position(pred)
}

#[test]
fn start_status_stop_logs_over_dbus_without_systemctl() {
    if !prerequisites() {
        return;
    }
    let lab = Lab::boot("hlsys-cli", &[]);

    // --- start a layer: the database layer first, then genai ---------------------------
    let start = lab.hlsys(&["start", "genai", "--json"]).ok("hlsys start genai");
    let doc = start.json();
    assert_eq!(doc["action"], "start");
    assert_eq!(doc["ok"], true, "{doc:#}");
    let res = results(&doc);
    for unit in [
        "homelab-genai.target",
        "homelab-database.target",
        "homelab-database.service",
        "homelab-genai-webui.service",
    ] {
        assert!(
            has(&res, unit, "start", "done"),
            "the transaction's job for {unit} was followed to its end: {res:?}"
        );
    }
    let requested: Vec<&str> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["requested"] == true)
        .map(|r| r["unit"].as_str().unwrap())
        .collect();
    assert_eq!(requested, vec!["homelab-genai.target"]);
    // Plain progress lines (stderr is no terminal), in the order things happened.
    let err = &start.stderr;
    let db_done =
        line_index(err, |l| l.starts_with("homelab-database.service: start done")).unwrap_or_else(|| panic!("{err}"));
    let webui_starts = line_index(err, |l| l.starts_with("homelab-genai-webui.service: start, activating"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        db_done < webui_starts,
        "the web UI starts only once the database is ready:\n{err}"
    );
    assert!(
        err.contains("waiting for health"),
        "the supervisor's STATUS shows as progress:\n{err}"
    );
    let db_ready = lab.timestamp("homelab-database.service", "ActiveEnterTimestamp");
    let webui_began = lab.timestamp("homelab-genai-webui.service", "InactiveExitTimestamp");
    assert!(
        db_ready > 0 && webui_began >= db_ready,
        "database ready at {db_ready}, web UI began at {webui_began}"
    );

    // --- status, as root: units and containers with health ------------------------------
    let t0 = Instant::now();
    let doc = lab.status_json();
    eprintln!(
        "status --json (root, through nsenter) took {:.0} ms",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(doc["unit"], "homelab.target");
    assert_eq!(doc["containers_error"], Value::Null, "{doc:#}");
    assert_eq!(layer(&doc, "genai")["active_state"], "active");
    let db = stack(&doc, "database");
    assert_eq!(db["active_state"], "active");
    assert_eq!(db["sub_state"], "running");
    assert!(db["since"].as_str().is_some_and(|s| s.ends_with('Z')), "{db:#}");
    assert!(
        db["status_text"].as_str().is_some_and(|s| s.starts_with("ready")),
        "{db:#}"
    );
    let containers = db["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "{db:#}");
    for c in containers {
        assert_eq!(c["state"], "running", "{c:#}");
        assert_eq!(c["health"], "healthy", "{c:#}");
        assert!(
            c["networks"].as_array().unwrap().iter().any(|n| n == "database"),
            "{c:#}"
        );
    }
    let webui = stack(&doc, "genai-webui");
    assert_eq!(webui["containers"][0]["health"], "healthy", "{webui:#}");
    assert_eq!(webui["missing_networks"], serde_json::json!([]), "{webui:#}");
    let text = lab.hlsys(&["status", "genai/webui"]).ok("hlsys status genai/webui");
    assert!(
        text.stdout
            .contains("stack genai-webui (homelab-genai-webui.service): active (running) since"),
        "{}",
        text.stdout
    );
    assert!(
        !text.stdout.contains("stack database"),
        "only what was asked for:\n{}",
        text.stdout
    );

    // --- status, as nobody: the unit part, containers unavailable ------------------------
    let nobody = lab
        .hlsys_as_nobody(&[], &["status", "--json"])
        .ok("hlsys status --json as nobody");
    let doc = nobody.json();
    let webui = stack(&doc, "genai-webui");
    assert_eq!(webui["active_state"], "active", "{doc:#}");
    assert!(
        webui["status_text"].as_str().is_some_and(|s| s.starts_with("ready")),
        "{webui:#}"
    );
    assert_eq!(layer(&doc, "database")["active_state"], "active");
    match doc["containers_error"].as_str() {
        Some(e) => {
            assert_eq!(e, "permission denied");
            assert_eq!(webui["containers"], Value::Null);
        }
        None => assert_eq!(webui["containers"][0]["health"], "healthy", "{webui:#}"),
    }
    let nobody_text = lab
        .hlsys_as_nobody(&[], &["status", "genai"])
        .ok("hlsys status genai as nobody");
    assert!(
        nobody_text
            .stdout
            .contains("containers: unavailable (permission denied)"),
        "{}",
        nobody_text.stdout
    );

    // --- mutating commands as nobody: systemd refuses, hlsys says who may -----------------
    for args in [&["start"][..], &["stop", "genai"], &["restart", "database"]] {
        lab.hlsys_as_nobody(&[], args).refused(args[0]);
    }
    // enable/disable write root's config: refused before anything changes.
    let o = lab.hlsys_as_nobody(&[], &["disable", "genai"]);
    assert_eq!(o.status.code(), Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("hlsys disable: only root may do this") && o.stderr.contains("sudo hlsys disable genai"),
        "{}",
        o.stderr
    );

    // --- stop the layer: its stack goes, the database stays -----------------------------
    let stop = lab.hlsys(&["stop", "genai", "--json"]).ok("hlsys stop genai");
    let res = results(&stop.json());
    assert!(has(&res, "homelab-genai.target", "stop", "done"), "{res:?}");
    assert!(
        has(&res, "homelab-genai-webui.service", "stop", "done"),
        "PartOf= pulls the stack's stop in: {res:?}"
    );
    let doc = lab.hlsys(&["status", "--json"]).json();
    assert_eq!(layer(&doc, "genai")["active_state"], "inactive");
    assert_eq!(
        stack(&doc, "genai-webui")["active_state"],
        "inactive",
        "the stack stopped cleanly; its journal:\n{}",
        lab.run(&[
            "journalctl",
            "-u",
            "homelab-genai-webui.service",
            "-n",
            "40",
            "--no-pager"
        ])
        .stdout
    );
    assert_eq!(
        stack(&doc, "genai-webui")["containers"],
        serde_json::json!([]),
        "compose down ran"
    );
    assert_eq!(stack(&doc, "database")["active_state"], "active");

    // --- start everything: homelab.target is active, its wants are started one by one ---
    let all = lab.hlsys(&["start", "--json"]).ok("hlsys start");
    let res = results(&all.json());
    assert!(
        has(&res, "homelab-genai-webui.service", "start", "done"),
        "the stopped stack comes back: {res:?}"
    );
    let doc = lab.status_json();
    assert_eq!(stack(&doc, "genai-webui")["active_state"], "active");
    assert_eq!(layer(&doc, "genai")["active_state"], "active");

    // --- --no-block: enqueued, not waited for --------------------------------------------
    let nb = lab
        .hlsys(&["restart", "panel", "--no-block", "--json"])
        .ok("hlsys restart --no-block");
    let res = results(&nb.json());
    assert!(has(&res, "homelab-panel.service", "restart", "queued"), "{res:?}");
    // A start now waits for that restart (systemd merges the start into the queued
    // restart job) or, if it is already over, starts nothing new.
    let back = lab.hlsys(&["start", "panel"]).ok("hlsys start panel");
    assert!(
        back.stderr.contains("homelab-panel.service: restart done")
            || back.stderr.contains("homelab-panel.service: start done"),
        "{}",
        back.stderr
    );
    assert_eq!(stack(&lab.status_json(), "panel")["active_state"], "active");

    // --- logs ----------------------------------------------------------------------------
    let logs = lab
        .hlsys(&["logs", "genai-webui", "-n", "30"])
        .ok("hlsys logs genai-webui");
    assert!(logs.stdout.contains("ready (1 containers)"), "{}", logs.stdout);
    let logs = lab
        .hlsys(&["logs", "genai", "--since", "1 hour ago"])
        .ok("hlsys logs genai");
    assert!(
        logs.stdout.contains("homelab-genai-webui"),
        "a layer's logs hold its stacks': {}",
        logs.stdout
    );
    assert!(logs.stdout.contains("Stopped"), "and the stop: {}", logs.stdout);

    // --- names that do not resolve ---------------------------------------------------------
    let o = lab.hlsys(&["start", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains("\"nope\" is no stack") && o.stderr.contains("genai-webui"),
        "{}",
        o.stderr
    );
}

#[test]
fn failed_start_names_the_unit_and_enable_disable_record_a_dropin() {
    if !prerequisites() {
        return;
    }
    let lab = Lab::boot(
        "hlsys-cli-fail",
        &[("tests/fixtures/trees/cli/extra", "/srv/compose/extra")],
    );
    let user_config = std::fs::read_to_string(repo_path("tests/fixtures/trees/e2e/hlsys.toml")).unwrap();

    // --- disable: a drop-in, a reload, the layer no longer wants the stack ----------------
    let o = lab.hlsys(&["disable", "broken"]).ok("hlsys disable broken");
    assert!(
        o.stdout
            .contains("extra-broken: disabled (homelab-extra-broken.service, inactive; layer extra)"),
        "{}",
        o.stdout
    );
    let dropin = lab
        .run(&["cat", "/etc/hlsys/hlsys.toml.d/50-hlsys-enable.toml"])
        .ok("reading the drop-in")
        .stdout;
    assert!(dropin.contains("[stacks.extra-broken]\nenabled = false\n"), "{dropin}");
    assert_eq!(
        lab.run(&["cat", "/etc/hlsys/hlsys.toml"]).stdout,
        user_config,
        "the user's config is never rewritten"
    );
    let target = lab
        .run(&["cat", "/run/systemd/generator/homelab-extra.target"])
        .ok("generated target")
        .stdout;
    assert!(
        !target.contains("homelab-extra-broken.service"),
        "reloaded: the layer no longer wants it:\n{target}"
    );
    let o = lab.hlsys(&["start", "extra"]).ok("hlsys start extra");
    assert!(
        !o.stderr.contains("homelab-extra-broken"),
        "a disabled stack is not started with its layer:\n{}",
        o.stderr
    );

    // --- a start that fails: non-zero, the unit named, its journal shown -------------------
    let o = lab.hlsys(&["start", "broken", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", o.stdout, o.stderr);
    let doc = o.json();
    assert_eq!(doc["ok"], false);
    // Its image is missing (and may not be pulled): its start fails (a stack of a layer
    // that waits for nothing prepares in its own start, it has no preparation unit).
    let result_of = |unit: &str| {
        doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unit"] == unit)
            .unwrap_or_else(|| panic!("{unit}: {doc:#}"))
            .clone()
    };
    assert!(
        !doc.to_string().contains("homelab-extra-broken-prepare.service"),
        "{doc:#}"
    );
    let r = result_of("homelab-extra-broken.service");
    assert_eq!(r["result"], "failed", "{doc:#}");
    let journal: Vec<&str> = r["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        journal
            .iter()
            .any(|l| l.contains("No such image: local/missing:latest")),
        "{journal:?}"
    );
    assert!(
        o.stderr.contains("homelab-extra-broken.service (failed)"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("--- homelab-extra-broken.service: last journal lines ---"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("No such image"), "{}", o.stderr);
    // Without --json too.
    let o = lab.hlsys(&["restart", "extra/broken"]);
    assert_eq!(o.status.code(), Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("restart failed: ") && o.stderr.contains("homelab-extra-broken.service (failed)"),
        "{}",
        o.stderr
    );

    // It would go on restarting (Restart=on-failure); stop it.
    lab.hlsys(&["stop", "broken"]).ok("hlsys stop broken");
    let doc = lab.status_json();
    let b = stack(&doc, "extra-broken");
    assert_eq!(b["enabled"], false);
    assert!(
        matches!(b["active_state"].as_str(), Some("inactive" | "failed")),
        "{b:#}"
    );

    // --- enable, by layer: every stack of the layer -----------------------------------------
    let o = lab.hlsys(&["enable", "extra"]).ok("hlsys enable extra");
    assert!(o.stdout.contains("extra-broken: enabled"), "{}", o.stdout);
    let dropin = lab
        .run(&["cat", "/etc/hlsys/hlsys.toml.d/50-hlsys-enable.toml"])
        .ok("reading the drop-in")
        .stdout;
    assert!(dropin.contains("[stacks.extra-broken]\nenabled = true\n"), "{dropin}");
    let target = lab
        .run(&["cat", "/run/systemd/generator/homelab-extra.target"])
        .ok("generated target")
        .stdout;
    assert!(
        target.contains("homelab-extra-broken.service"),
        "reloaded: the layer wants it again:\n{target}"
    );
    let o = lab.hlsys(&["enable", "extra-broken"]).ok("hlsys enable again");
    assert!(o.stdout.contains("extra-broken: already enabled"), "{}", o.stdout);
    let doc = lab.status_json();
    assert_eq!(stack(&doc, "extra-broken")["enabled"], true);
}

/// `hlsys status` on 100 running stacks (4 layers of 25): prints the median wall time of
/// the whole command, as root and as nobody. Slow to set up (100 `compose up`), so
/// ignored by default: `cargo test --test e2e_cli -- --ignored --nocapture`.
#[test]
#[ignore]
fn status_of_100_stacks_benchmark() {
    if !prerequisites() {
        return;
    }
    let tree = tempfile::tempdir().unwrap();
    // One shared network: a default network per project would exhaust Docker's address pools.
    let mut config = String::from(
        "stacks_dir = \"/srv/compose\"\nunit_prefix = \"homelab\"\nhlsys_path = \"/usr/bin/hlsys\"\n\n[networks.bench]\n",
    );
    for l in 0..4 {
        config.push_str(&format!("\n[layers.l{l}]\n"));
        if l > 0 {
            config.push_str(&format!("after = [\"l{}\"]\n", l - 1));
        }
        for s in 0..25 {
            let dir = tree.path().join(format!("l{l}/s{s:02}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("compose.yaml"),
                "services:\n  app:\n    image: local/busybox:latest\n    command: [\"sleep\", \"3600\"]\n    init: true\n    \
                 restart: \"no\"\n    networks: [bench]\nnetworks:\n  bench: { external: true }\n",
            )
            .unwrap();
        }
    }
    let cfg = tree.path().join("hlsys.toml");
    std::fs::write(&cfg, config).unwrap();

    let pre_boot = format!(
        "install -D -m755 {} \"$ROOT/usr/bin/hlsys\"\ninstall -D -m755 {} \"$ROOT/usr/lib/systemd/system-generators/hlsys-generator\"\n",
        HLSYS,
        common::generator_bin().display()
    );
    let m = Machine::start("hlsys-cli-bench", Some(&pre_boot));
    m.wait_docker();
    m.copy_in(tree.path(), "/srv/compose");
    m.copy_in(&cfg, "/etc/hlsys/hlsys.toml");
    let lab = Lab { m };
    lab.hlsys(&["reload"]).ok("hlsys reload");
    let t0 = Instant::now();
    lab.hlsys(&["start"]).ok("hlsys start (100 stacks)");
    eprintln!("started 100 stacks in {:.1}s", t0.elapsed().as_secs_f64());
    let doc = lab.status_json();
    let active = doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["stacks"].as_array().unwrap())
        .filter(|s| s["active_state"] == "active")
        .count();
    assert_eq!(active, 100);
    // Timed inside the machine: the command alone, not nsenter.
    let script = "for i in $(seq 21); do s=$(date +%s%N); $@ hlsys status --json >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 )); done";
    for (who, prefix) in [
        ("root", ""),
        ("nobody", "setpriv --reuid=65534 --regid=65534 --clear-groups"),
    ] {
        let out = lab
            .run(&["bash", "-c", &script.replace("$@", prefix)])
            .ok("timing status")
            .stdout;
        let mut us: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        us.sort();
        eprintln!(
            "hlsys status --json, 100 stacks, as {who}: median {:.1} ms, min {:.1} ms, max {:.1} ms ({} runs)",
            us[us.len() / 2] as f64 / 1000.0,
            us[0] as f64 / 1000.0,
            us[us.len() - 1] as f64 / 1000.0,
            us.len()
        );
    }
}
