//! No value from an env file (or a compose `environment:` value) reaches any message.
//!
//! A canary secret is planted in every position an env value can take: valid, inside
//! unterminated quotes, before a bad `${`, before invalid UTF-8, in interpolation errors
//! (as the text of `${VAR:?…}`, as a value a required message would expand), in the
//! layer's and the config's env files, in a compose `environment:` value next to a YAML
//! error or a shape error. Then every channel is searched for it: the generated units and
//! report, the generator's log (the kernel log when the test can read it, else stderr),
//! stdout and stderr of `hlsys stacks`, `plan`, `check` and `status` (with and without
//! `--json`), and the `STATUS=` that `hlsys supervise` sends for a broken stack (read
//! from a NOTIFY_SOCKET the test binds).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;

const HLSYS: &str = env!("CARGO_BIN_EXE_hlsys");

fn canary() -> String {
    format!("CANARY{}X{}", std::process::id(), nix::unistd::getpid().as_raw() * 7919)
}

fn write(root: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

const IMAGE: &str = "services:\n  x:\n    image: busybox\n";

/// A tree with one stack per canary position (and one good stack), and its config.
fn plant(root: &Path, c: &str) -> PathBuf {
    let stack = |id: &str, env: &[u8], compose: &str| {
        write(root, &format!("tree/apps/{id}/compose.yaml"), compose);
        if !env.is_empty() {
            write(root, &format!("tree/apps/{id}/.env"), env);
        }
    };
    let uses = "services:\n  x:\n    image: busybox\n    environment:\n      P: \"${PASSWORD}\"\n";
    stack("valid", format!("PASSWORD={c}\n").as_bytes(), uses);
    stack("dquote", format!("PASSWORD=\"{c}\nB=1\n").as_bytes(), IMAGE);
    stack("squote", format!("PASSWORD='{c}\n").as_bytes(), IMAGE);
    stack("brace", format!("PASSWORD={c}${{\n").as_bytes(), IMAGE);
    stack("brace2", format!("PASSWORD=a${{{c}\n").as_bytes(), IMAGE);
    stack(
        "utf8",
        [format!("PASSWORD={c}").as_bytes(), b"\xff\n"].concat().as_slice(),
        IMAGE,
    );
    stack("required", format!("PASSWORD=${{UNSET:?{c}}}\n").as_bytes(), IMAGE);
    stack("keyspace", format!("{c} and more\n").as_bytes(), IMAGE);
    stack("keychar", format!("{c}!=1\n").as_bytes(), IMAGE);
    stack("nokey", format!("PASSWORD={c}\n=x\n").as_bytes(), IMAGE);
    stack(
        "expandmsg",
        format!("PASSWORD={c}\n").as_bytes(),
        "services:\n  x:\n    image: \"${UNSET:?see $PASSWORD}\"\n",
    );
    stack(
        "composesyntax",
        format!("PASSWORD={c}\n").as_bytes(),
        "services:\n  x:\n    image: \"${PASSWORD}${\"\n",
    );
    stack(
        "composeyaml",
        b"",
        &format!("services:\n  x:\n    image: busybox\n    environment:\n      SECRET: \"{c}\\q\"\n"),
    );
    stack(
        "composeshape",
        b"",
        &format!("services:\n  x:\n    image: busybox\n    environment:\n      SECRET: {c}\n    ports: 80\n"),
    );
    stack(
        "composedup",
        b"",
        &format!("services:\n  x:\n    image: busybox\n    environment:\n      SECRET: {c}\n      SECRET: {c}\n"),
    );
    stack(
        "dependson",
        format!("PASSWORD={c}\n").as_bytes(),
        "services:\n  x:\n    image: busybox\n    depends_on: [\"${PASSWORD}\"]\n    networks: [\"${PASSWORD}\"]\n",
    );
    write(root, "tree/layered/.env", format!("LAYER=\"{c}\n"));
    write(root, "tree/layered/s/compose.yaml", IMAGE);
    write(root, "global.env", format!("GLOBAL={c}\n"));
    write(root, "tree/good/a/compose.yaml", IMAGE);
    write(
        root,
        "hlsys.toml",
        // The runner is trusted: this test is about secrets, not owners (common::trusting_runner).
        common::trusting_runner("stacks_dir = \"tree\"\nenv_files = [\"global.env\"]\n"),
    );
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    root.join("hlsys.toml")
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

fn assert_clean(channel: &str, text: &str, c: &str) {
    assert!(!text.contains(c), "the canary leaked into {channel}:\n{text}");
}

/// Opens /dev/kmsg for reading at its end, when this process may.
fn kmsg_reader() -> Option<std::fs::File> {
    use std::io::Seek;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    f.seek(std::io::SeekFrom::End(0)).ok()?;
    Some(f)
}

/// Records read from /dev/kmsg since [`kmsg_reader`] (one record per read).
fn kmsg_records(f: &mut std::fs::File) -> String {
    use std::io::Read;
    let mut all = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
            // EPIPE: records were overwritten; keep reading from the next one.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    all
}

#[test]
fn no_channel_carries_an_env_value() {
    let d = tempfile::tempdir().unwrap();
    let c = canary();
    let config = plant(d.path(), &c);
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();

    // The generator: units, report, and its log.
    let mut kmsg = kmsg_reader();
    let run = Command::new(common::generator_bin())
        .args([&out, &d.path().join("e"), &d.path().join("l")])
        .env("HLSYS_CONFIG", &config)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let log = match &mut kmsg {
        Some(k) => kmsg_records(k) + &String::from_utf8_lossy(&run.stderr),
        None => String::from_utf8_lossy(&run.stderr).into_owned(),
    };
    assert!(log.contains("skipping apps-dquote"), "log not captured:\n{log}");
    assert_clean("the generator log", &log, &c);
    let files = files_text(&out);
    let report = files.iter().find(|(p, _)| p.ends_with("hlsys-generator.json")).unwrap();
    for id in [
        "apps-dquote",
        "apps-utf8",
        "apps-required",
        "apps-composeyaml",
        "layered-s",
    ] {
        assert!(report.1.contains(id), "{id} not reported:\n{}", report.1);
    }
    assert!(out.join("homelab-good-a.service").is_file());
    for (p, text) in &files {
        assert_clean(&p.display().to_string(), text, &c);
    }

    // The CLI's reporting commands.
    for args in [
        &["stacks"][..],
        &["stacks", "--json"],
        &["plan"],
        &["plan", "--json"],
        &["plan", "--graph"],
        &["check"],
        &["check", "--json"],
        &["status"],
        &["status", "--json"],
    ] {
        let o = Command::new(HLSYS)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_clean(&format!("hlsys {}", args.join(" ")), &text, &c);
    }

    // STATUS= of `hlsys supervise` for broken stacks.
    for id in [
        "apps-dquote",
        "apps-brace",
        "apps-required",
        "apps-composeshape",
        "layered-s",
    ] {
        let status = supervise_status(&config, id, d.path());
        assert!(status.contains("STATUS=failed"), "{id}: {status}");
        assert_clean(&format!("STATUS= of supervise {id}"), &status, &c);
    }
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

/// Compose's and Docker's own words name images and containers, and both may be
/// interpolated from an env file: `hlsys supervise` masks them before its journal lines
/// (stderr here) and STATUS=. A real `docker compose up` of a stack whose image tag and
/// container name come from `.env` fails on the missing image; every datagram it sent and
/// everything it printed is searched for the value.
#[test]
fn compose_output_is_masked() {
    if !common::require_root_and(&["docker"]) {
        return;
    }
    common::ensure_dockerd();
    let d = tempfile::tempdir().unwrap();
    let c = canary();
    write(
        d.path(),
        "tree/apps/leaky/compose.yaml",
        "services:\n  x:\n    image: \"local/hlsys-absent:${TAG}\"\n    container_name: \"c-${TAG}\"\n    pull_policy: never\n",
    );
    write(d.path(), "tree/apps/leaky/.env", format!("TAG={c}\n"));
    let config = d.path().join("hlsys.toml");
    let text = format!("stacks_dir = \"{}\"\n", d.path().join("tree").display());
    write(d.path(), "hlsys.toml", common::trusting_runner(&text));
    let sock_path = d.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    // Read as systemd would, while it runs: a socket nobody reads fills up (a dozen
    // datagrams) and blocks the sender.
    sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (o, sent) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut sent = String::new();
            let mut buf = vec![0u8; 65536];
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        sent.push_str(&String::from_utf8_lossy(&buf[..n]));
                        sent.push('\n');
                    }
                    Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => return sent,
                    Err(_) => {}
                }
            }
        });
        let o = Command::new(HLSYS)
            .arg("--config")
            .arg(&config)
            .args(["supervise", "apps-leaky"])
            .env("NOTIFY_SOCKET", &sock_path)
            .output()
            .unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (o, reader.join().unwrap())
    });
    assert!(!o.status.success(), "a missing image must fail the start");
    let printed = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    // The failure is there, with the value hidden (Compose did name the image).
    assert!(sent.contains("STATUS=failed"), "{sent}\n{printed}");
    assert!(
        printed.contains("(hidden)"),
        "Compose's message was expected, masked:\n{printed}"
    );
    assert_clean("STATUS= of supervise apps-leaky", &sent, &c);
    assert_clean("output of supervise apps-leaky", &printed, &c);
    let _ = Command::new("docker")
        .args(["compose", "-p", "apps-leaky", "down"])
        .output();
}
