//! End to end: notifications and metrics (issue 25) in a real systemd 252 booted as PID 1
//! with docker.service inside (tests/harness/machine.sh), on `tests/fixtures/trees/notify`.
//! A receiver of the test's own (python3, 127.0.0.1:8099, started before Docker) is the
//! webhook and the ntfy endpoint, and records every request.
//!
//! One machine, in order:
//! 1. at boot, db keeps dying (exit 3) until its start limit is hit: exactly one incident
//!    (one request per target) naming db, its container, the exit code and app, held back
//!    (it requires db); the webhook got the bearer token, ntfy a Title;
//!    the planted secret of db/.env is in no request;
//! 2. the metrics socket answers (curl) with the text format: `hlsys_stack_up` of pg 1,
//!    and 0 after `systemctl stop`; a `MEASURE` line gives the scrape time;
//! 3. m0…m9 started together all fail: one more incident listing the ten, not ten;
//!    on_ready is off (the default): no ready unit, no ready message.
//!
//! A second machine (`tests/fixtures/trees/notify-ready`, on_ready on, every enabled
//! stack comes up): exactly one "homelab ready: 2/2 stacks healthy in X s";
//! `hlsys notify --test` reaches both targets; a scrape of its 100 stacks (98 defined,
//! never started) timed by curl (`MEASURE metrics_scrape_100_stacks_ms=`), with
//! `hlsys_network_drift` 0 for its two networks.
//!
//! Needs root, systemd-nspawn and Docker (skipped otherwise, failing when CI=true).
mod common;
#[path = "common/e2e.rs"]
mod e2e;

use std::time::{Duration, Instant};

use common::{require_root_and, Machine};
use e2e::{pre_boot, show, with_diagnostics, HOMELAB_JOURNAL};

const TREE: &str = "tests/fixtures/trees/notify";
const SECRET: &str = "planted-secret-7f3a9c";
const TOKEN: &str = "e2e-token-5be1";
const RECORD: &str = "/var/tmp/notify-requests.jsonl";

const RECEIVER: &str = r#"import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("utf-8", "replace")
        rec = {"path": self.path, "headers": dict(self.headers.items()), "body": body}
        with open(sys.argv[1], "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 8099), H).serve_forever()
"#;

fn receiver_pre_boot() -> String {
    format!(
        "install -D -m644 /dev/stdin \"$ROOT/usr/local/lib/e2e-receiver.py\" <<'E2E_EOF'\n{RECEIVER}E2E_EOF
install -D -m644 /dev/stdin \"$ROOT/etc/systemd/system/e2e-receiver.service\" <<'E2E_EOF'
[Unit]
Before=docker.service
[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/e2e-receiver.py {RECORD}
[Install]
WantedBy=multi-user.target
E2E_EOF
mkdir -p \"$ROOT/etc/systemd/system/multi-user.target.wants\"
ln -sf /etc/systemd/system/e2e-receiver.service \"$ROOT/etc/systemd/system/multi-user.target.wants/\"
printf '%s\\n' {TOKEN} > \"$ROOT/etc/hlsys/notify.token\" && chmod 600 \"$ROOT/etc/hlsys/notify.token\"
"
    )
}

#[derive(Debug, serde::Deserialize)]
struct Request {
    path: String,
    headers: std::collections::BTreeMap<String, String>,
    body: String,
}

fn requests(m: &Machine) -> Vec<Request> {
    let (_, out, _) = m.exec(&["cat", RECORD]);
    out.lines()
        .map(|l| serde_json::from_str(l).expect("a recorded request"))
        .collect()
}

/// A header of `r`, whatever its case.
fn hdr(r: &Request, k: &str) -> Option<String> {
    r.headers
        .iter()
        .find(|(h, _)| h.eq_ignore_ascii_case(k))
        .map(|(_, v)| v.clone())
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn scrape(m: &Machine) -> String {
    m.exec_ok(&[
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "10",
        "http://127.0.0.1:9464/metrics",
    ])
}

#[test]
fn one_notification_per_incident_and_metrics_on_the_socket() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd"]) {
        return;
    }
    let pre = format!(
        "{}{}chmod 600 \"$ROOT/srv/compose/db/.env\"\n",
        pre_boot(TREE, true, &[]),
        receiver_pre_boot()
    );
    let m = Machine::start("notify", Some(&pre));
    let extra: [&[&str]; 3] = [
        HOMELAB_JOURNAL,
        &["cat", RECORD],
        &["systemctl", "status", "--no-pager", "homelab-notify@*"],
    ];
    with_diagnostics(&m, &extra, || {
        // 1. db's start limit: 10 starts, 5 s apart, each failing after about a second.
        wait_for("db failed for good", Duration::from_secs(240), || {
            show(&m, "homelab-db.service", "ActiveState") == "failed"
        });
        wait_for("the notification of db", Duration::from_secs(60), || {
            requests(&m).len() >= 2
        });
        // Nothing more comes for that incident.
        std::thread::sleep(Duration::from_secs(8));
        let reqs = requests(&m);
        eprintln!("requests: {reqs:#?}");
        assert_eq!(reqs.len(), 2, "one request per target: {reqs:#?}");
        let hook = reqs.iter().find(|r| r.path == "/hook").expect("webhook request");
        let ntfy = reqs.iter().find(|r| r.path == "/ntfy/lab").expect("ntfy request");
        assert_eq!(
            hdr(hook, "authorization").as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(hdr(ntfy, "title").as_deref(), Some("homelab: db failed"));
        let j: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
        assert_eq!(j["event"], "failed");
        for text in [&ntfy.body, &j["message"].as_str().unwrap().to_string()] {
            assert!(text.starts_with("db (layer db): failed: "), "{text}");
            assert!(
                text.contains("db-db-1") && text.contains("exited (3)"),
                "container and exit code: {text}"
            );
            assert!(text.contains("held back: app"), "{text}");
            assert!(text.contains("unit restarts: "), "{text}");
        }
        for r in &reqs {
            assert!(
                !r.body.contains(SECRET) && !format!("{:?}", r.headers).contains(SECRET),
                "{r:?}"
            );
        }

        // 2. Metrics on the socket.
        let t0 = Instant::now();
        let text = scrape(&m);
        eprintln!("MEASURE metrics scrape ({} stacks): {:?}", 13, t0.elapsed());
        eprintln!("{text}");
        assert!(text.contains("# TYPE hlsys_stack_up gauge"), "{text}");
        assert!(text.contains("hlsys_stack_up{stack=\"pg\",layer=\"pg\"} 1\n"), "{text}");
        assert!(
            text.contains("hlsys_stack_failed{stack=\"db\",layer=\"db\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hlsys_stack_held_back{stack=\"app\",layer=\"app\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains(SECRET));
        m.exec_ok(&["systemctl", "stop", "homelab-pg.service"]);
        let text = scrape(&m);
        assert!(text.contains("hlsys_stack_up{stack=\"pg\",layer=\"pg\"} 0\n"), "{text}");
        if m.exec(&["which", "promtool"]).0.success() {
            let (st, out, err) = m.exec(&[
                "bash",
                "-c",
                "curl -sS http://127.0.0.1:9464/metrics | promtool check metrics",
            ]);
            assert!(st.success(), "promtool: {out}{err}");
        } else {
            eprintln!("SKIP: promtool not installed (Debian's prometheus package)");
        }

        // 3. Ten stacks failing together.
        let units: Vec<String> = (0..10).map(|i| format!("homelab-m{i}.service")).collect();
        let mut start = vec!["systemctl", "start", "--no-block"];
        start.extend(units.iter().map(String::as_str));
        m.exec_ok(&start);
        wait_for("m0…m9 failed for good", Duration::from_secs(300), || {
            units.iter().all(|u| show(&m, u, "ActiveState") == "failed")
        });
        wait_for("their notification", Duration::from_secs(60), || {
            requests(&m).len() >= 4
        });
        std::thread::sleep(Duration::from_secs(10));
        let reqs = requests(&m);
        let new: Vec<&Request> = reqs[2..].iter().collect();
        eprintln!("requests of the ten: {new:#?}");
        assert_eq!(new.len(), 2, "one message for the ten, per target: {new:#?}");
        let ntfy = new.iter().find(|r| r.path == "/ntfy/lab").unwrap();
        assert_eq!(hdr(ntfy, "title").as_deref(), Some("homelab: 10 stacks failed"));
        for i in 0..10 {
            assert!(ntfy.body.contains(&format!("m{i} (layer many)")), "{}", ntfy.body);
        }

        // on_ready is off by default: no ready unit, and no ready message all along.
        assert_eq!(show(&m, "homelab-notify-ready.service", "LoadState"), "not-found");
        for r in requests(&m) {
            let title = hdr(&r, "title").unwrap_or_default();
            assert!(
                !r.body.contains("homelab ready") && !title.contains("ready"),
                "a ready message with on_ready off: {r:?}"
            );
        }
    });
}

const READY_TREE: &str = "tests/fixtures/trees/notify-ready";
/// Stacks defined in the ready tree besides web and cache, never started (`enabled =
/// false`): the 100-stack scrape asks systemd about each all the same.
const IDLE_STACKS: usize = 98;

/// b00…b97: one tiny busybox service each, and their `enabled = false`.
fn idle_stacks() -> (Vec<(String, String)>, String) {
    let compose = "services:\n  app:\n    image: local/busybox:latest\n    command: [\"sleep\", \"3600\"]\n";
    let mut toml = String::new();
    let files = (0..IDLE_STACKS)
        .map(|i| {
            toml += &format!("[stacks.b{i:02}]\nenabled = false\n");
            (format!("b{i:02}/compose.yaml"), compose.to_string())
        })
        .collect();
    (files, toml)
}

/// `curl -w '%{time_total}'` of one scrape on the socket, in milliseconds, and the body.
fn timed_scrape(m: &Machine) -> (f64, String) {
    let out = m.exec_ok(&[
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "10",
        "-o",
        "/var/tmp/scrape.txt",
        "-w",
        "%{time_total}",
        "http://127.0.0.1:9464/metrics",
    ]);
    let secs: f64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl time_total: {out:?}"));
    (secs * 1000.0, m.exec_ok(&["cat", "/var/tmp/scrape.txt"]))
}

/// A second machine, on_ready on and every enabled stack coming up:
/// 1. exactly one "homelab ready: 2/2 stacks healthy in X s" (one request per target);
/// 2. `hlsys notify --test` reaches the webhook (JSON, bearer token) and ntfy (Title);
/// 3. a scrape of the 100-stack tree (2 running, 98 defined) on the socket, timed by curl
///    (`MEASURE metrics_scrape_100_stacks_ms=`), with `hlsys_network_drift` 0 for both
///    declared networks and promtool's approval.
#[test]
fn every_stack_up_gives_one_ready_message_and_a_100_stack_scrape() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd"]) {
        return;
    }
    let (files, toml) = idle_stacks();
    let extra: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    assert!(!toml.contains("E2E_EOF"));
    let pre = format!(
        "{}{}cat >> \"$ROOT/etc/hlsys/hlsys.toml\" <<'E2E_EOF'\n{toml}E2E_EOF\n",
        pre_boot(READY_TREE, true, &extra),
        receiver_pre_boot()
    );
    let m = Machine::start("ntf-ready", Some(&pre));
    let diag: [&[&str]; 3] = [
        HOMELAB_JOURNAL,
        &["cat", RECORD],
        &["systemctl", "status", "--no-pager", "homelab-notify-ready.service"],
    ];
    with_diagnostics(&m, &diag, || {
        // 1. The ready message, once.
        wait_for("the ready message", Duration::from_secs(240), || {
            requests(&m).len() >= 2
        });
        std::thread::sleep(Duration::from_secs(8));
        let reqs = requests(&m);
        eprintln!("requests: {reqs:#?}");
        assert_eq!(reqs.len(), 2, "one ready message per target: {reqs:#?}");
        let is_ready = |t: &str| {
            t.strip_prefix("homelab ready: 2/2 stacks healthy in ")
                .and_then(|r| r.strip_suffix(" s"))
                .is_some_and(|n| n.parse::<u64>().is_ok())
        };
        let hook = reqs.iter().find(|r| r.path == "/hook").expect("webhook request");
        let ntfy = reqs.iter().find(|r| r.path == "/ntfy/lab").expect("ntfy request");
        let j: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
        assert_eq!(j["event"], "ready", "{j}");
        assert!(is_ready(j["message"].as_str().unwrap()), "{j}");
        assert_eq!(j["title"], j["message"]);
        assert_eq!(j["failures"], serde_json::json!([]));
        assert!(is_ready(&ntfy.body), "{}", ntfy.body);
        assert_eq!(hdr(ntfy, "title").as_deref(), Some(ntfy.body.as_str()));
        assert_eq!(show(&m, "homelab-notify-ready.service", "Result"), "success");

        // 2. hlsys notify --test.
        m.exec_ok(&["hlsys", "notify", "--test"]);
        let reqs = requests(&m);
        let new: Vec<&Request> = reqs[2..].iter().collect();
        assert_eq!(new.len(), 2, "one test message per target: {new:#?}");
        let hook = new.iter().find(|r| r.path == "/hook").expect("webhook test");
        let ntfy = new.iter().find(|r| r.path == "/ntfy/lab").expect("ntfy test");
        assert_eq!(hdr(hook, "content-type").as_deref(), Some("application/json"));
        assert_eq!(
            hdr(hook, "authorization").as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        let j: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
        assert_eq!(j["event"], "test");
        assert_eq!(j["title"], "homelab: test notification");
        assert_eq!(j["message"], "hlsys notify --test on homelab: this target works");
        assert_eq!(hdr(ntfy, "title").as_deref(), Some("homelab: test notification"));
        assert_eq!(hdr(ntfy, "authorization"), None, "ntfy has no token_file");
        assert_eq!(ntfy.body, "hlsys notify --test on homelab: this target works");

        // 3. The 100-stack scrape: the first one warms the page cache, five are timed.
        let (_, text) = timed_scrape(&m);
        let up = text.lines().filter(|l| l.starts_with("hlsys_stack_up{")).count();
        assert_eq!(up, 2 + IDLE_STACKS, "{text}");
        assert!(
            text.contains("hlsys_stack_up{stack=\"web\",layer=\"web\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hlsys_stack_up{stack=\"b42\",layer=\"b42\"} 0\n"),
            "{text}"
        );
        for net in ["proxy", "metrics"] {
            assert!(
                text.contains(&format!("hlsys_network_drift{{network=\"{net}\"}} 0\n")),
                "{text}"
            );
        }
        let mut ms: Vec<f64> = (0..5).map(|_| timed_scrape(&m).0).collect();
        ms.sort_by(f64::total_cmp);
        eprintln!(
            "MEASURE metrics_scrape_100_stacks_ms={:.1} (median of 5; min {:.1}, max {:.1})",
            ms[2], ms[0], ms[4]
        );
        if m.exec(&["which", "promtool"]).0.success() {
            let (st, out, err) = m.exec(&["bash", "-c", "promtool check metrics < /var/tmp/scrape.txt"]);
            assert!(st.success(), "promtool: {out}{err}");
        } else {
            eprintln!("SKIP: promtool not installed (Debian's prometheus package)");
        }
    });
}
