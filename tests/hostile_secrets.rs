//! Secrets on paths the redaction did not cover, and trust through symlink chains
//! (issue 27), run through the `hlsys-generator` binary and the CLI.
//!
//! - A canary planted in `.env` and interpolated into `x-hlsys.requires`, `x-hlsys.wants`,
//!   `x-hlsys.layer` and `extends` (service and file), with a `"` and a `\` in it (so a
//!   message quoting it carries an escaped form), appears in no channel: the generator's
//!   units and report, its log (stderr: the harness runs it as nobody, or the kernel log),
//!   `hlsys stacks`, `plan`, `check` (with and without `--json`) and the `STATUS=` of
//!   `hlsys supervise`. The channels are searched for the canary's core, which every
//!   form of the value (as written, `{:?}`, JSON, shell-quoted) contains.
//! - The world-readable report holds no content hash of a file others cannot read
//!   (a 0600 compose file, a 0600 env file, a 0600 config, a 0644 file in a 0700
//!   directory): a hash of a short secret is a guessing oracle.
//! - A symlink chain through a directory another user owns is refused with its fix, for
//!   a link whose next link lies in that directory and for a link whose target lies below it.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use hostile::*;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const HLSYS: &str = env!("CARGO_BIN_EXE_hlsys");

/// The canary's core: in every form of the planted values (they are made from it), found
/// case-insensitively.
fn canary() -> String {
    format!("canary{}x{}", std::process::id(), nix::unistd::getpid().as_raw() % 9973)
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `text` lower-cased contains the canary (`c` is lower case).
fn leaks(text: &str, c: &str) -> bool {
    text.to_lowercase().contains(c)
}

/// Notes `channel` in `leaked` when `text` carries the canary, with the lines that do.
fn check_clean(leaked: &mut Vec<String>, channel: &str, text: &str, c: &str) {
    if leaks(text, c) {
        let lines: Vec<&str> = text.lines().filter(|l| leaks(l, c)).take(12).collect();
        leaked.push(format!("{channel}:\n  {}", lines.join("\n  ")));
    }
}

/// The stacks that interpolate the canary into a key whose error used to carry it, with
/// the canary as `SECRET` (a `"` and a `\` in it, and upper case) and `PLAIN` (a valid
/// stack name).
const BAD: [&str; 9] = [
    "apps-req",
    "apps-reqplain",
    "apps-wantplain",
    "apps-layer",
    "apps-ext",
    "apps-extplain",
    "apps-extfile",
    "apps-chain",
    "apps-chain2",
];

fn plant(s: &Setup, c: &str) {
    let secret = format!("{}\"in\\quotes", c.to_uppercase());
    // Single quotes: the value as written, backslash and double quote included.
    let env = format!("SECRET='{secret}'\nPLAIN={c}\n");
    let stack = |dir: &str, compose: &str| {
        s.write(&format!("tree/apps/{dir}/compose.yaml"), compose);
        s.write(&format!("tree/apps/{dir}/.env"), &env);
    };
    let svc = "services:\n  x: {image: busybox}\n";
    stack("req", &format!("x-hlsys:\n  requires: [\"${{SECRET}}\"]\n{svc}"));
    stack("reqplain", &format!("x-hlsys:\n  requires: [\"${{PLAIN}}\"]\n{svc}"));
    stack("wantplain", &format!("x-hlsys:\n  wants: [\"${{PLAIN}}\"]\n{svc}"));
    stack("layer", &format!("x-hlsys:\n  layer: \"${{SECRET}}\"\n{svc}"));
    stack(
        "ext",
        "services:\n  x:\n    image: busybox\n    extends: {service: \"${SECRET}\"}\n",
    );
    stack(
        "extplain",
        "services:\n  x:\n    image: busybox\n    extends: {service: \"${PLAIN}\"}\n",
    );
    stack(
        "extfile",
        "services:\n  x:\n    image: busybox\n    extends: {file: \"${SECRET}.yaml\", service: x}\n",
    );
    // Requires a stack left out for the canary: the reason is quoted in its message.
    s.write(
        "tree/apps/chain/compose.yaml",
        &format!("x-hlsys:\n  requires: [apps-reqplain]\n{svc}"),
    );
    s.write(
        "tree/apps/chain2/compose.yaml",
        &format!("x-hlsys:\n  requires: [apps-chain]\n{svc}"),
    );
}

/// Every file below `dir`, as text (lossy), with its path.
fn files_text(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = p.symlink_metadata().unwrap();
        if m.is_dir() {
            out.extend(files_text(&p));
        } else if m.is_file() {
            out.push((
                p.clone(),
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
            ));
        }
    }
    out
}

/// What `hlsys supervise ID` sends to NOTIFY_SOCKET, and prints, for a broken stack.
fn supervise_status(config: &Path, id: &str, dir: &Path) -> String {
    let sock_path = dir.join(format!("notify-{id}"));
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let o = Command::new(HLSYS)
        .arg("--config")
        .arg(config)
        .args(["supervise", id])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .output()
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = sock.recv(&mut buf).unwrap_or(0);
    format!(
        "{}\n{}{}",
        String::from_utf8_lossy(&buf[..n]),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn env_values_in_x_hlsys_and_extends_reach_no_channel() {
    let s = Setup::new();
    let c = canary();
    plant(&s, &c);
    let config = s.path("hlsys.toml");
    let r = generate(&s, &config);
    bounded("canary in x-hlsys and extends", &r);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for good in ["homelab-good-a.service", "homelab-good-b.service"] {
        assert!(s.normal().join(good).is_file(), "{good} missing\n{}", r.stderr);
    }
    let report = s.report();
    let skipped = report["skipped"].as_array().unwrap();
    for bad in BAD {
        assert!(
            skipped.iter().any(|e| e["stack"] == bad),
            "{bad} not reported: {skipped:#?}"
        );
        assert!(r.stderr.contains(bad), "{bad} not logged:\n{}", r.stderr);
    }
    let mut leaked = Vec::new();
    check_clean(&mut leaked, "the generator log", &r.stderr, &c);
    for (p, text) in files_text(&s.normal()) {
        check_clean(&mut leaked, &p.display().to_string(), &text, &c);
    }
    for args in [
        &["stacks"][..],
        &["stacks", "--json"],
        &["plan"],
        &["plan", "--json"],
        &["check"],
        &["check", "--json"],
    ] {
        let o = Command::new(HLSYS)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("NO_COLOR", "1")
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            text.contains("apps-req"),
            "hlsys {}: no error shown:\n{text}",
            args.join(" ")
        );
        check_clean(&mut leaked, &format!("hlsys {}", args.join(" ")), &text, &c);
    }
    for id in ["apps-req", "apps-layer", "apps-ext", "apps-chain2"] {
        let status = supervise_status(&config, id, s.dir.path());
        assert!(status.contains("STATUS=failed"), "{id}: {status}");
        check_clean(&mut leaked, &format!("STATUS= of supervise {id}"), &status, &c);
    }
    assert!(leaked.is_empty(), "the canary leaked into:\n{}", leaked.join("\n"));
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[test]
fn the_report_holds_no_content_hash_of_a_file_others_cannot_read() {
    let s = Setup::new();
    let pin = "services:\n  x:\n    image: busybox\n    environment: {PIN: \"4711\"}\n";
    let private = s.write("tree/apps/pin/compose.yaml", pin);
    chmod(&private, 0o600);
    let env = s.write("tree/apps/pin/.env", "PIN=4711\n");
    chmod(&env, 0o600);
    let closed_dir = s.mkdirs("tree/apps/closed/inner");
    let closed = s.write(
        "tree/apps/closed/inner/compose.yaml",
        "services:\n  y: {image: busybox}\n",
    );
    chmod(&closed, 0o644);
    chmod(closed_dir.parent().unwrap(), 0o700);
    let config = s.path("hlsys.toml");
    chmod(&config, 0o600);
    let public = s.path("tree/good/a/compose.yaml");

    // As systemd runs it at boot: as root (or the runner, who owns the files), so the
    // private files are read.
    let o = Command::new(common::generator_bin())
        .args([s.normal(), s.path("early"), s.path("late")])
        .env("HLSYS_CONFIG", &config)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for unit in ["homelab-apps-pin.service", "homelab-apps-closed-inner.service"] {
        assert!(
            s.normal().join(unit).is_file(),
            "{unit} missing: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let text = std::fs::read_to_string(s.normal().join("hlsys-generator.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let inputs = report["inputs"].as_object().unwrap();
    for f in [&private, &env, &closed, &config] {
        let hash = sha256_hex(&std::fs::read(f).unwrap());
        let entry = inputs
            .get(f.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} is not among the inputs: {inputs:#?}", f.display()));
        assert!(
            !text.contains(&hash),
            "the report holds the content hash of {} ({entry}), which others cannot read",
            f.display()
        );
        println!("{:<60} {entry}", f.display());
    }
    // A file anyone may read is still an input (its fingerprint is free to be its hash).
    assert!(inputs.contains_key(public.to_str().unwrap()), "{inputs:#?}");
}

/// Trust through symlink chains: the generator refuses a stack whose path passes through
/// a directory nobody (uid 65534) owns, on the way from one link to the next.
#[test]
fn a_symlink_chain_through_a_directory_another_user_owns_is_refused() {
    if !common::require_root_and(&[]) {
        return;
    }
    let s = Setup::new();
    let t = s.dir.path().to_path_buf();
    // File chain: tree/apps/chain/compose.yaml → T/hop/next → T/real/compose.yaml; T/hop
    // is nobody's, so nobody can point `next` at a compose file of their own.
    s.write("real/compose.yaml", "services:\n  x: {image: busybox}\n");
    let hop = s.mkdirs("hop");
    symlink(t.join("real/compose.yaml"), hop.join("next")).unwrap();
    std::os::unix::fs::chown(&hop, Some(NOBODY), Some(NOBODY)).unwrap();
    s.mkdirs("tree/apps/filechain");
    s.link("tree/apps/filechain/compose.yaml", hop.join("next"));
    // Directory chain: tree/apps/dirchain → T/hop2/stack → T/real2; T/hop2 is nobody's.
    s.write("real2/compose.yaml", "services:\n  x: {image: busybox}\n");
    let hop2 = s.mkdirs("hop2");
    symlink(t.join("real2"), hop2.join("stack")).unwrap();
    std::os::unix::fs::chown(&hop2, Some(NOBODY), Some(NOBODY)).unwrap();
    s.link("tree/apps/dirchain", hop2.join("stack"));
    // Through: tree/apps/below → T/owned/sub, a root-owned directory in one nobody owns
    // (who can rename `sub` away and put their own in its place).
    s.write("owned/sub/compose.yaml", "services:\n  x: {image: busybox}\n");
    std::os::unix::fs::chown(t.join("owned"), Some(NOBODY), Some(NOBODY)).unwrap();
    s.link("tree/apps/below", t.join("owned/sub"));
    // The same chains through root's directories are trusted.
    s.write("fine/real/compose.yaml", "services:\n  x: {image: busybox}\n");
    s.link("fine/hop/next", t.join("fine/real/compose.yaml"));
    s.mkdirs("tree/apps/fine");
    s.link("tree/apps/fine/compose.yaml", t.join("fine/hop/next"));

    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("symlink chains", &r);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let units = files_text(&s.normal());
    let has = |u: &str| units.iter().any(|(p, _)| p.ends_with(u));
    for good in [
        "homelab-good-a.service",
        "homelab-good-b.service",
        "homelab-apps-fine.service",
    ] {
        assert!(has(good), "{good} missing\n{}", r.stderr);
    }
    let report = s.report();
    let skipped = report["skipped"].as_array().unwrap();
    let mut wrong = Vec::new();
    for (id, dir) in [
        ("apps-filechain", &hop),
        ("apps-dirchain", &hop2),
        ("apps-below", &t.join("owned")),
    ] {
        if has(&format!("homelab-{id}.service")) {
            wrong.push(format!("{id} was generated"));
        }
        let Some(e) = skipped.iter().find(|e| e["stack"] == id) else {
            wrong.push(format!("{id} not skipped"));
            continue;
        };
        let msg = e["message"].as_str().unwrap();
        let said = format!("{} is owned by uid {NOBODY}", dir.display());
        let fix = format!("fix: chown root:root {}", dir.display());
        if !(msg.contains(&said) && msg.contains(&fix)) {
            wrong.push(format!("{id}: {msg}"));
        }
        if !r.stderr.contains(&said) {
            wrong.push(format!("{id} not logged"));
        }
        println!("{id}: {msg}");
    }
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), r.stderr);
}
