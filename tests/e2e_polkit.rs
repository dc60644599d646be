//! Non-root operation through polkit, in a real systemd 252 with polkitd
//! (tests/harness/machine.sh): the rule hlsys ships (dbus/50-hlsys.rules) installed where
//! the package puts it, a group `homelab`, a member (alice) and a non-member (bob).
//! alice starts, stops and reloads through systemd's polkit check; bob gets hlsys's
//! refusal and nothing starts. One machine for every step.

mod common;

use std::time::Instant;

use common::{repo_path, require_root_and, Machine};

const HLSYS: &str = env!("CARGO_BIN_EXE_hlsys");
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const RULE: &str = "/usr/share/polkit-1/rules.d/50-hlsys.rules";

fn prerequisites() -> bool {
    require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd", "pkcheck", "runuser"])
}

use common::Out;

struct Lab {
    m: Machine,
}

impl Lab {
    /// A machine with hlsys, the generator, the rule, the e2e tree and its config, the
    /// group and the two users; the units generated.
    fn boot() -> Lab {
        let pre_boot = format!(
            "install -D -m755 {HLSYS} \"$ROOT/usr/bin/hlsys\"\n\
             install -D -m755 {} \"$ROOT/usr/lib/systemd/system-generators/hlsys-generator\"\n\
             install -D -m644 {} \"$ROOT{RULE}\"\n",
            common::generator_bin().display(),
            repo_path("dbus/50-hlsys.rules").display(),
        );
        let m = Machine::start("hlsys-polkit", Some(&pre_boot));
        m.wait_docker();
        m.copy_in(repo_path("tests/fixtures/trees/e2e"), "/srv/compose");
        m.copy_in(
            repo_path("tests/fixtures/trees/e2e/hlsys.toml"),
            "/etc/hlsys/hlsys.toml",
        );
        m.exec_ok(&["groupadd", "--system", "homelab"]);
        m.exec_ok(&["useradd", "--no-create-home", "--groups", "homelab", "alice"]);
        m.exec_ok(&["useradd", "--no-create-home", "bob"]);
        let lab = Lab { m };
        lab.hlsys_as("root", &["reload"]).ok("hlsys reload as root");
        lab
    }

    fn run(&self, args: &[&str]) -> Out {
        let (status, stdout, stderr) = self.m.exec(args);
        Out { status, stdout, stderr }
    }

    /// `hlsys ARGS` as `user` (runuser: the user's groups from the group database, as
    /// a login would give them), in a clean environment, never hanging the test.
    fn hlsys_as(&self, user: &str, args: &[&str]) -> Out {
        let t0 = Instant::now();
        let mut a = vec![
            "timeout", "180", "runuser", "-u", user, "--", "env", "-i", PATH, "hlsys",
        ];
        a.extend_from_slice(args);
        let o = self.run(&a);
        eprintln!(
            "{user}: hlsys {} → {} in {:.2}s",
            args.join(" "),
            o.status,
            t0.elapsed().as_secs_f64()
        );
        o
    }

    /// A unit's ActiveState, read with busctl (not through hlsys).
    fn active_state(&self, unit: &str) -> String {
        let path = hlsys::systemd::unit_path(unit);
        let o = self
            .run(&[
                "busctl",
                "get-property",
                "org.freedesktop.systemd1",
                &path,
                "org.freedesktop.systemd1.Unit",
                "ActiveState",
            ])
            .ok("busctl get-property");
        // `s "active"`
        o.stdout.trim().trim_start_matches("s ").trim_matches('"').to_string()
    }

    /// pkcheck's exit status for `action` with `details` (unit, verb) for a process of
    /// `user`: 0 authorised, 1 not, 2 only with authentication.
    fn pkcheck(&self, pid: &str, action: &str, details: &[(&str, &str)]) -> i32 {
        let mut a = vec!["pkcheck", "--action-id", action, "--process", pid];
        for (k, v) in details {
            a.extend_from_slice(&["--detail", k, v]);
        }
        self.run(&a).status.code().unwrap_or(-1)
    }
}

const GENAI: [&str; 3] = [
    "homelab-genai.target",
    "homelab-genai-webui.service",
    "homelab-database.service",
];

/// polkitd is activated on the system bus and loaded the rule without an error.
fn assert_polkit_runs_the_rule(lab: &Lab) {
    // Any call to the authority activates polkitd (D-Bus activation → polkit.service).
    lab.run(&[
        "busctl",
        "get-property",
        "org.freedesktop.PolicyKit1",
        "/org/freedesktop/PolicyKit1/Authority",
        "org.freedesktop.PolicyKit1.Authority",
        "BackendName",
    ])
    .ok("busctl: polkit's authority");
    assert_eq!(lab.active_state("polkit.service"), "active");
    let journal = lab
        .run(&["journalctl", "-u", "polkit.service", "--no-pager", "-o", "cat"])
        .stdout;
    assert!(
        journal.contains("Loading rules from directory /usr/share/polkit-1/rules.d"),
        "{journal}"
    );
    assert!(
        !journal.lines().any(|l| l.contains("50-hlsys.rules")),
        "polkitd complains about the rule:\n{journal}"
    );
}

/// The `Flags=` of each call to the manager while bob runs `hlsys stop panel` with no
/// terminal, then `hlsys start panel` on one (script(1) gives it a pty): (member, flags)
/// as busctl monitor saw them.
fn manager_call_flags(lab: &Lab) -> Vec<(String, String)> {
    // A marker call shows when the monitor is attached and writing.
    let script = r#"
        busctl monitor --match "type=method_call,interface=org.freedesktop.systemd1.Manager" >/run/mon.txt 2>&1 &
        mon=$!
        for _ in $(seq 100); do
            busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
                org.freedesktop.systemd1.Manager GetDefaultTarget >/dev/null
            grep -q GetDefaultTarget /run/mon.txt && break
            sleep 0.1
        done
        runuser -u bob -- hlsys stop panel >/dev/null 2>&1
        timeout 60 script -qec "runuser -u bob -- hlsys start panel" /dev/null </dev/null >/dev/null
        sleep 0.5
        kill $mon
        cat /run/mon.txt
    "#;
    let out = lab.m.exec_ok(&["sh", "-c", script]);
    let mut calls = Vec::new();
    let mut flags = String::new();
    for l in out.lines() {
        if let Some(f) = l.split_whitespace().find_map(|w| w.strip_prefix("Flags=")) {
            flags = f.to_string();
        }
        // The marker is busctl's own call (which allows interactive authorisation).
        match l.split_whitespace().find_map(|w| w.strip_prefix("Member=")) {
            Some("GetDefaultTarget") | None => {}
            Some(m) => calls.push((m.to_string(), flags.clone())),
        }
    }
    calls
}

#[test]
fn a_homelab_member_runs_stacks_through_polkit_and_others_are_refused() {
    if !prerequisites() {
        return;
    }
    let lab = Lab::boot();
    for u in GENAI {
        assert_eq!(lab.active_state(u), "inactive", "{u} before the test");
    }

    // --- a non-member: systemd refuses, hlsys says who may, nothing starts --------------
    let o = lab.hlsys_as("bob", &["start", "genai"]);
    eprintln!("{}", o.stderr);
    o.refused("start");
    assert!(o.stderr.contains("group \"homelab\""), "{}", o.stderr);
    for u in GENAI {
        assert_eq!(lab.active_state(u), "inactive", "{u} after bob's start");
    }
    assert_polkit_runs_the_rule(&lab);
    lab.hlsys_as("bob", &["reload"]).refused("reload");

    // Interactive authorisation only from a terminal: the flag (0x4) is on the calls
    // polkit judges then, and on none of them from a script.
    let calls = manager_call_flags(&lab);
    let flags_of = |m: &str| calls.iter().find(|(c, _)| c == m).map(|(_, f)| f.as_str());
    assert_eq!(flags_of("StopUnit"), Some("0"), "{calls:?}");
    assert_eq!(flags_of("StartUnit"), Some("4"), "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|(m, f)| f == "0" || matches!(m.as_str(), "StartUnit" | "EnqueueUnitJob")),
        "only the authorised calls carry it: {calls:?}"
    );

    // --- the member: start, stop, reload ------------------------------------------------
    lab.hlsys_as("alice", &["start", "genai"])
        .ok("alice: hlsys start genai");
    for u in GENAI {
        assert_eq!(lab.active_state(u), "active", "{u} after alice's start");
    }
    lab.hlsys_as("alice", &["stop", "genai"]).ok("alice: hlsys stop genai");
    assert_eq!(lab.active_state("homelab-genai.target"), "inactive");
    assert_eq!(lab.active_state("homelab-genai-webui.service"), "inactive");
    let o = lab.hlsys_as("alice", &["reload"]).ok("alice: hlsys reload");
    assert!(o.stderr.contains("systemd reloaded"), "{}", o.stderr);

    // --- enable/disable stay root's, for the member too ---------------------------------
    let o = lab.hlsys_as("alice", &["disable", "genai"]);
    assert_eq!(o.status.code(), Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("hlsys disable: only root may do this") && o.stderr.contains("sudo hlsys disable genai"),
        "{}",
        o.stderr
    );
    let (st, _, _) = lab
        .m
        .exec(&["test", "-e", "/etc/hlsys/hlsys.toml.d/50-hlsys-enable.toml"]);
    assert!(!st.success(), "no drop-in was written");

    // --- the rule's edges, asked of polkit directly (root may pass details) -------------
    let pid = lab
        .m
        .exec_ok(&[
            "sh",
            "-c",
            "setpriv --reuid=alice --regid=alice --init-groups sleep 300 >/dev/null 2>&1 & echo $!",
        ])
        .trim()
        .to_string();
    let units = "org.freedesktop.systemd1.manage-units";
    let ask = |unit: &str, verb: &str| lab.pkcheck(&pid, units, &[("unit", unit), ("verb", verb)]);
    assert_eq!(ask("homelab-genai-webui.service", "restart"), 0);
    assert_eq!(ask("homelab.target", "start"), 0);
    assert_ne!(ask("homelab-genai-webui.service", "kill"), 0, "kill is not allowed");
    assert_ne!(ask("homelab-genai-webui.service", "set-property"), 0);
    assert_ne!(ask("ssh.service", "start"), 0, "other units are not allowed");
    assert_ne!(ask("homelab-x@1.service", "start"), 0, "no template instances");
    assert_ne!(
        lab.pkcheck(&pid, "org.freedesktop.systemd1.manage-unit-files", &[]),
        0,
        "unit files are not allowed"
    );
}
