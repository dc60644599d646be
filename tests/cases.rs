//! Fake-root cases for the generator, in the manner of zram-generator's tests and
//! Podman Quadlet's fixtures: every directory `tests/cases/NN-name/` is a small host root
//! (`etc/hlsys/hlsys.toml`, `srv/compose/…`; a case may also have no config at all). It is
//! copied into a temporary directory and the real `hlsys-generator` binary is run on it
//! with `HLSYS_GENERATOR_ROOT` pointing there. Then
//!
//! - the generator's output is diffed recursively against the case's `expected/`
//!   directory (the temporary directory's path written `@TMP@`; the report
//!   `hlsys-generator.json`, which holds mtimes, is left out of the diff but its `skipped`
//!   list is what `assert-error` checks). `UPDATE_CASES=1 cargo test --test cases`
//!   rewrites `expected/`: review its diff like code;
//! - every `## ` line of the case's `expect` file is checked. Other lines are comments.
//!
//! Verbs (`@TMP@` in any argument is replaced by the temporary directory; it is checked to
//! need no escaping in a unit file):
//!
//! - `## assert-key-is UNIT SECTION KEY VALUE…`: UNIT, parsed with the same
//!   `hlsys_core::units::unit_file::UnitFile` the generator writes it with, has exactly these values
//!   for KEY in SECTION, in order, over all its KEY lines (so `After=` stated in full).
//!   Arguments are split at spaces; `"…"` quotes one with spaces (`\"` and `\\` inside).
//! - `## assert-key-missing UNIT SECTION KEY`: UNIT has no KEY line in SECTION.
//! - `## assert-contains UNIT LINE…`: UNIT has a line exactly equal to LINE (for checking
//!   the escaped text itself).
//! - `## assert-not-contains UNIT TEXT…`: UNIT exists and TEXT occurs nowhere in it.
//! - `## assert-absent UNIT`: no unit of that name was generated.
//! - `## assert-link DIR/UNIT`: a `.wants` link `DIR/UNIT` was generated.
//! - `## assert-error STACK SUBSTRING…`: the report skips STACK with a `FILE: MESSAGE`
//!   containing SUBSTRING. Every skipped entry must be matched by some assert-error line.
//! - `## assert-count-units N`: exactly N units were generated.
//! - `## case-dir NAME…`: copy the case to `@TMP@/NAME` instead of `@TMP@/<case>` (for
//!   paths with characters a fixture directory should not have).
//!
//! Any other `## ` verb fails the case.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hlsys_core::units::unit_file::UnitFile;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");
/// Where a case keeps the generator output it expects, and its assertions.
const EXPECTED: &str = "expected";
const EXPECT: &str = "expect";
const REPORT: &str = hlsys_core::generator::REPORT_NAME;

#[derive(Debug, Clone, PartialEq)]
enum Directive {
    KeyIs {
        unit: String,
        section: String,
        key: String,
        values: Vec<String>,
    },
    KeyMissing {
        unit: String,
        section: String,
        key: String,
    },
    Contains {
        unit: String,
        line: String,
    },
    NotContains {
        unit: String,
        text: String,
    },
    Absent {
        unit: String,
    },
    Link {
        dir: String,
        unit: String,
    },
    Error {
        stack: String,
        text: String,
    },
    CountUnits(usize),
    CaseDir(String),
}

/// Splits at spaces outside double quotes; `\"` and `\\` escape inside them.
fn quoted_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if_eq(&' ').is_some() {}
        let Some(c) = chars.next() else { return Ok(out) };
        let mut w = String::new();
        if c == '"' {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in {s:?}")),
                    Some('"') => break,
                    Some('\\') => w.extend(chars.next()),
                    Some(c) => w.push(c),
                }
            }
        } else {
            w.push(c);
            while let Some(c) = chars.next_if(|c| *c != ' ') {
                w.push(c);
            }
        }
        out.push(w);
    }
}

/// UNIT SECTION KEY and the rest of the words.
fn unit_section_key(args: &str) -> Result<(String, String, String, Vec<String>), String> {
    let mut w = quoted_words(args)?.into_iter();
    match (w.next(), w.next(), w.next()) {
        (Some(u), Some(s), Some(k)) => Ok((u, s, k, w.collect())),
        _ => Err(format!("expected UNIT SECTION KEY, got {args:?}")),
    }
}

/// Splits `rest` at the first space: (word, remainder). The remainder keeps its spaces.
fn word(rest: &str) -> Result<(&str, &str), String> {
    match rest.split_once(' ') {
        Some((w, r)) if !w.is_empty() && !r.is_empty() => Ok((w, r)),
        _ => Err(format!("expected two arguments, got {rest:?}")),
    }
}

fn one(rest: &str) -> Result<&str, String> {
    if rest.is_empty() || rest.contains(' ') {
        return Err(format!("expected one argument, got {rest:?}"));
    }
    Ok(rest)
}

/// Parses an `expect` file into (line number, directive).
fn parse_expect(text: &str) -> Result<Vec<(usize, Directive)>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let Some(rest) = raw.strip_prefix("## ") else {
            if raw.starts_with("##") {
                return Err(format!("line {n}: {raw:?}: a directive is `## verb args`"));
            }
            continue;
        };
        let (verb, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let d = (|| -> Result<Directive, String> {
            Ok(match verb {
                "assert-key-is" => {
                    let (unit, section, key, values) = unit_section_key(args)?;
                    if values.is_empty() {
                        return Err("assert-key-is needs at least one value (use assert-key-missing)".into());
                    }
                    Directive::KeyIs {
                        unit,
                        section,
                        key,
                        values,
                    }
                }
                "assert-key-missing" => match unit_section_key(args)? {
                    (unit, section, key, rest) if rest.is_empty() => Directive::KeyMissing { unit, section, key },
                    _ => return Err(format!("expected UNIT SECTION KEY, got {args:?}")),
                },
                "assert-contains" => {
                    let (u, l) = word(args)?;
                    Directive::Contains {
                        unit: u.into(),
                        line: l.into(),
                    }
                }
                "assert-not-contains" => {
                    let (u, t) = word(args)?;
                    Directive::NotContains {
                        unit: u.into(),
                        text: t.into(),
                    }
                }
                "assert-absent" => Directive::Absent {
                    unit: one(args)?.into(),
                },
                "assert-link" => {
                    let (d, u) = one(args)?
                        .rsplit_once('/')
                        .ok_or_else(|| format!("expected DIR/UNIT, got {args:?}"))?;
                    Directive::Link {
                        dir: d.into(),
                        unit: u.into(),
                    }
                }
                "assert-error" => {
                    let (s, t) = word(args)?;
                    Directive::Error {
                        stack: s.into(),
                        text: t.into(),
                    }
                }
                "assert-count-units" => Directive::CountUnits(
                    one(args)?
                        .parse()
                        .map_err(|e| format!("assert-count-units {args:?}: {e}"))?,
                ),
                "case-dir" if !args.is_empty() && !args.contains('/') => Directive::CaseDir(args.into()),
                _ => return Err(format!("unknown or malformed directive `## {verb}` ({args:?})")),
            })
        })()
        .map_err(|e| format!("line {n}: {e}"))?;
        out.push((n, d));
    }
    Ok(out)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            copy_dir(&e.path(), &dst);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
        // The checkout's modes are git's and the umask's (0664 under umask 002); a case
        // is a host root as an admin would leave it, writable by its owner only.
        if !ty.is_symlink() {
            let mode = std::fs::metadata(&dst).unwrap().permissions().mode();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode & !0o022)).unwrap();
        }
    }
}

/// Names the test runner as trusted in the case's config (see
/// `common::trusting_runner`): cases are about units, not about who owns the files.
fn trust_runner_in(root: &Path) {
    let cfg = root.join("etc/hlsys/hlsys.toml");
    if let Ok(text) = std::fs::read_to_string(&cfg) {
        std::fs::write(&cfg, common::trusting_runner(&text)).unwrap();
    }
}

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX) == 0
}

/// Everything a case produced, with the temporary directory kept alive.
struct Rendered {
    _tmp: tempfile::TempDir,
    tmp: String,
    /// The generator's output below the output directory, `@TMP@` for the temporary
    /// directory, without the report.
    files: BTreeMap<String, String>,
    /// The report's skipped stacks: (stack, "FILE: MESSAGE").
    errors: Vec<(String, String)>,
}

impl Rendered {
    fn unit(&self, name: &str) -> Option<&str> {
        self.files
            .get(name)
            .map(String::as_str)
            .filter(|_| name.contains('.') && !name.contains('/'))
    }

    fn units(&self) -> Vec<&str> {
        self.files
            .keys()
            .map(String::as_str)
            .filter(|n| !n.contains('/') && !n.ends_with(".wants"))
            .collect()
    }
}

/// Copies case `dir` (without `expect` and `expected/`) to a temporary root and runs the
/// generator on it. `Err` for problems of the case itself.
fn render_case(dir: &Path, directives: &[(usize, Directive)]) -> Result<Rendered, String> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmp_str = tmp.path().to_str().unwrap().to_string();
    if !tmp_str.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
        return Err(format!(
            "temporary directory {tmp_str:?} would need escaping; set TMPDIR"
        ));
    }
    let name = directives
        .iter()
        .find_map(|(_, d)| match d {
            Directive::CaseDir(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_else(|| dir.file_name().unwrap().to_string_lossy().into_owned());
    let root = tmp.path().join(name);
    copy_dir(dir, &root);
    trust_runner_in(&root);
    std::fs::remove_file(root.join(EXPECT)).unwrap();
    let _ = std::fs::remove_dir_all(root.join(EXPECTED));
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();

    let mut cmd = Command::new(common::generator_bin());
    cmd.arg(&out)
        .env_remove("HLSYS_CONFIG")
        .env("HLSYS_GENERATOR_ROOT", &root)
        .current_dir("/");
    if is_root() {
        // Not root: the generator then cannot write the host's /dev/kmsg either.
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let run = cmd.output().unwrap();
    if !run.status.success() {
        return Err(format!(
            "generator exited with {}: {}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let mut files = common::read_tree(&out);
    let report: serde_json::Value = serde_json::from_str(&files.remove(REPORT).ok_or("no report written")?).unwrap();
    let errors = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap().to_string();
            (field("stack"), format!("{}: {}", field("file"), field("message")))
        })
        .collect();
    for v in files.values_mut() {
        *v = v.replace(&tmp_str, "@TMP@");
    }
    Ok(Rendered {
        _tmp: tmp,
        tmp: tmp_str,
        files,
        errors,
    })
}

/// The difference between the case's `expected/` and what the generator wrote, or
/// rewrites `expected/` when UPDATE_CASES is set.
fn diff_expected(dir: &Path, r: &Rendered) -> Vec<String> {
    let expected_dir = dir.join(EXPECTED);
    if std::env::var_os("UPDATE_CASES").is_some() {
        let _ = std::fs::remove_dir_all(&expected_dir);
        for (rel, content) in &r.files {
            let p = expected_dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        return Vec::new();
    }
    let expected = common::read_tree(&expected_dir);
    let mut fails = Vec::new();
    for name in expected.keys().filter(|n| !r.files.contains_key(*n)) {
        fails.push(format!("{EXPECTED}/{name} was not generated"));
    }
    for (name, actual) in &r.files {
        match expected.get(name) {
            None => fails.push(format!("{name} was generated but is not in {EXPECTED}/")),
            Some(exp) if exp != actual => fails.push(format!(
                "{name} differs from {EXPECTED}/{name}:\n--- expected ---\n{exp}--- generated ---\n{actual}"
            )),
            Some(_) => {}
        }
    }
    fails
}

/// Checks every directive; returns one message per failure, `LINE: …`.
fn check(r: &Rendered, directives: &[(usize, Directive)]) -> Vec<String> {
    let sub = |s: &str| s.replace("@TMP@", &r.tmp);
    let unit = |name: &str| r.unit(name);
    let names = r.units();
    let mut fails = Vec::new();
    let mut matched = vec![false; r.errors.len()];
    for (n, d) in directives {
        let fail = match d {
            Directive::Contains { unit: u, line } => {
                let line = sub(line);
                match unit(u) {
                    None => Some(format!("no unit {u}; units: {names:?}")),
                    Some(f) if !f.lines().any(|l| l.replace("@TMP@", &r.tmp) == line) => {
                        Some(format!("{u} has no line\n    {line}\n--- {u} ---\n{f}"))
                    }
                    Some(_) => None,
                }
            }
            Directive::NotContains { unit: u, text } => {
                let text = sub(text);
                match unit(u) {
                    None => Some(format!("no unit {u}; units: {names:?}")),
                    Some(f) if f.replace("@TMP@", &r.tmp).contains(&text) => {
                        Some(format!("{u} contains {text:?}\n--- {u} ---\n{f}"))
                    }
                    Some(_) => None,
                }
            }
            Directive::Absent { unit: u } => unit(u).map(|_| format!("unit {u} was rendered")),
            Directive::Link { dir, unit: u } => {
                let link = format!("{}/{u}", sub(dir));
                let links: Vec<&String> = r.files.keys().filter(|k| k.contains(".wants/")).collect();
                (r.files.get(&link).map(String::as_str) != Some(&format!("-> ../{u}\n")))
                    .then(|| format!("no link {link} -> ../{u}; links: {links:?}"))
            }
            Directive::KeyIs {
                unit: u,
                section,
                key,
                values,
            } => match unit(u).map(|f| UnitFile::parse(&f.replace("@TMP@", &r.tmp))) {
                None => Some(format!("no unit {u}; units: {names:?}")),
                Some(Err(e)) => Some(format!("{u} does not parse: {e}")),
                Some(Ok(parsed)) => {
                    let want: Vec<String> = values.iter().map(|v| sub(v)).collect();
                    let have = parsed.values(section, key);
                    (have != want).then(|| format!("{u} [{section}] {key}: {have:?}, expected {want:?}"))
                }
            },
            Directive::KeyMissing { unit: u, section, key } => match unit(u).map(UnitFile::parse) {
                None => Some(format!("no unit {u}; units: {names:?}")),
                Some(Err(e)) => Some(format!("{u} does not parse: {e}")),
                Some(Ok(parsed)) => {
                    let have = parsed.values(section, key);
                    (!have.is_empty()).then(|| format!("{u} [{section}] has {key}={have:?}"))
                }
            },
            Directive::Error { stack, text } => {
                let text = sub(text);
                let hits: Vec<usize> = (0..r.errors.len())
                    .filter(|&i| r.errors[i].0 == *stack && r.errors[i].1.contains(&text))
                    .collect();
                for &i in &hits {
                    matched[i] = true;
                }
                hits.is_empty()
                    .then(|| format!("no error for {stack} containing {text:?}; errors: {:#?}", r.errors))
            }
            Directive::CountUnits(want) => {
                (names.len() != *want).then(|| format!("{} units, expected {want}: {names:?}", names.len()))
            }
            Directive::CaseDir(_) => None,
        };
        if let Some(f) = fail {
            fails.push(format!("line {n}: {f}"));
        }
    }
    for (i, m) in matched.iter().enumerate() {
        if !m {
            fails.push(format!(
                "unexpected error (no assert-error matches it): {:?}",
                r.errors[i]
            ));
        }
    }
    fails
}

fn run_case(dir: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(dir.join("expect")) {
        Ok(t) => t,
        Err(e) => return vec![format!("cannot read expect: {e}")],
    };
    let directives = match parse_expect(&text) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    if !directives.iter().any(|(_, d)| !matches!(d, Directive::CaseDir(_))) {
        return vec!["expect has no assertions".into()];
    }
    match render_case(dir, &directives) {
        Ok(r) => [diff_expected(dir, &r), check(&r, &directives)].concat(),
        Err(e) => vec![e],
    }
}

fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(CASES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn fake_root_cases() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 15, "expected the cases under {CASES}, found {dirs:?}");
    let mut report = String::new();
    for dir in &dirs {
        let case = dir.file_name().unwrap().to_string_lossy();
        for f in run_case(dir) {
            report.push_str(&format!("\n[{case}] {f}\n"));
        }
    }
    assert!(report.is_empty(), "case failures:{report}");
}

// ---------------------------------------------------------------------------------
// The harness itself must be able to fail.

#[test]
fn unknown_verb_is_refused() {
    let e = parse_expect("# comment\n## assert-contains a.service X=1\n## assert-contain a.service X=1\n").unwrap_err();
    assert!(
        e.starts_with("line 3: unknown or malformed directive `## assert-contain`"),
        "{e}"
    );
    let e = parse_expect("##assert-absent a.service\n").unwrap_err();
    assert!(e.starts_with("line 1: "), "{e}");
    let e = parse_expect("## assert-count-units many\n").unwrap_err();
    assert!(e.starts_with("line 1: assert-count-units"), "{e}");
    let e = parse_expect("## assert-absent\n").unwrap_err();
    assert!(e.starts_with("line 1: expected one argument"), "{e}");
    let e = parse_expect("## assert-key-is a.service Unit After\n").unwrap_err();
    assert!(e.contains("at least one value"), "{e}");
    let e = parse_expect("## assert-key-missing a.service Unit\n").unwrap_err();
    assert!(e.contains("expected UNIT SECTION KEY"), "{e}");
    let e = parse_expect("## assert-key-is a.service Unit Description \"open\n").unwrap_err();
    assert!(e.contains("unterminated quote"), "{e}");
}

#[test]
fn parse_keeps_spaces_in_lines() {
    let d = parse_expect(
        "## assert-contains a.service ExecStart=/x \"a b\"  c\n## assert-link multi-user.target.wants/homelab.target\n",
    )
    .unwrap();
    assert_eq!(
        d,
        [
            (
                1,
                Directive::Contains {
                    unit: "a.service".into(),
                    line: "ExecStart=/x \"a b\"  c".into()
                }
            ),
            (
                2,
                Directive::Link {
                    dir: "multi-user.target.wants".into(),
                    unit: "homelab.target".into()
                }
            ),
        ]
    );
}

#[test]
fn wrong_expectations_fail() {
    let dir = Path::new(CASES).join("02-requires-wants");
    let wrong = [
        "## assert-contains homelab-apps-app.service Requires=homelab-apps-cache.service",
        "## assert-not-contains homelab-apps-app.service Wants=homelab-apps-cache.service",
        "## assert-absent homelab-apps-app.service",
        "## assert-link multi-user.target.wants/homelab-apps.target",
        "## assert-error apps-app anything",
        "## assert-count-units 1",
        "## assert-contains homelab-nope.service X=1",
        "## assert-key-is homelab-apps-app.service Unit After homelab-apps-db.service homelab-apps-cache.service",
        "## assert-key-missing homelab-apps-app.service Unit Wants",
        "## assert-key-is homelab-apps-app.service Service Type simple",
    ];
    let directives = parse_expect(&wrong.join("\n")).unwrap();
    let r = render_case(&dir, &directives).unwrap();
    let fails = check(&r, &directives);
    let lines: Vec<&str> = fails.iter().map(|f| f.split(':').next().unwrap()).collect();
    assert_eq!(
        lines,
        ["line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 8", "line 9", "line 10"],
        "{fails:#?}"
    );
    // An error the expect does not mention fails the case.
    let dir = Path::new(CASES).join("09-broken");
    let directives = parse_expect("## assert-count-units 0\n").unwrap();
    let r = render_case(&dir, &directives).unwrap();
    assert!(check(&r, &directives).iter().any(|f| f.starts_with("unexpected error")));
}
