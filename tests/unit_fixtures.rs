//! Quadlet-style fixtures for the unit renderer: every directory under
//! `tests/fixtures/units/` is a case with an `hlsys.toml`, usually a `tree/`, and an
//! `expect` file. The case is copied into a temporary directory, loaded with
//! `Config::load`, built with `tree::build` and rendered with `units::render`; then every
//! `## ` line of `expect` is checked. Other lines of `expect` are comments.
//!
//! Verbs (`@TMP@` in any argument is replaced by the temporary directory the case was
//! copied into; it is checked to need no escaping in a unit file):
//!
//! - `## assert-contains UNIT LINE…`: UNIT exists and has a line exactly equal to LINE.
//! - `## assert-not-contains UNIT TEXT…`: UNIT exists and TEXT occurs nowhere in it.
//! - `## assert-absent UNIT`: no unit of that name was rendered.
//! - `## assert-link DIR/UNIT`: a `.wants` link `DIR/UNIT` was rendered.
//! - `## assert-error STACK SUBSTRING…`: an error or skipped entry for STACK whose
//!   `FILE: MESSAGE` contains SUBSTRING. Every error the case produces must be matched
//!   by some assert-error line.
//! - `## assert-count-units N`: exactly N units were rendered.
//! - `## case-dir NAME…`: copy the case to `@TMP@/NAME` instead of `@TMP@/<case>` (for
//!   paths with characters a fixture directory should not have).
//! - `## as-default-config`: after loading, treat the config as read from the default
//!   path /etc/hlsys/hlsys.toml (units then carry no `--config`).
//!
//! Any other `## ` verb fails the case.

use std::path::{Path, PathBuf};

use hlsys::units::Generated;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/units");

#[derive(Debug, Clone, PartialEq)]
enum Directive {
    Contains { unit: String, line: String },
    NotContains { unit: String, text: String },
    Absent { unit: String },
    Link { dir: String, unit: String },
    Error { stack: String, text: String },
    CountUnits(usize),
    CaseDir(String),
    AsDefaultConfig,
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
                "as-default-config" if args.is_empty() => Directive::AsDefaultConfig,
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
    }
}

/// Everything a case produced, with the temporary directory kept alive.
struct Rendered {
    _tmp: tempfile::TempDir,
    tmp: String,
    generated: Generated,
    /// Errors of the model and skipped stacks: (stack, "FILE: MESSAGE").
    errors: Vec<(String, String)>,
}

/// Copies case `dir` and renders it. `Err` for problems of the case itself.
fn render_case(dir: &Path, directives: &[(usize, Directive)]) -> Result<Rendered, String> {
    let tmp = tempfile::tempdir().unwrap();
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
    std::fs::remove_file(root.join("expect")).unwrap();
    let mut cfg =
        hlsys::config::Config::load(&root.join("hlsys.toml"), true).map_err(|e| format!("config unusable: {e}"))?;
    if directives.iter().any(|(_, d)| *d == Directive::AsDefaultConfig) {
        cfg.source = Some(PathBuf::from(hlsys::config::DEFAULT_CONFIG));
    }
    let model = hlsys::tree::build(cfg).map_err(|e| format!("build: config unusable: {e}"))?;
    let generated = hlsys::units::render(&model);
    let errors = model
        .errors
        .iter()
        .chain(&generated.skipped)
        .map(|e| (e.stack.clone(), format!("{}: {}", e.file.display(), e.message)))
        .collect();
    Ok(Rendered {
        _tmp: tmp,
        tmp: tmp_str,
        generated,
        errors,
    })
}

/// Checks every directive; returns one message per failure, `LINE: …`.
fn check(r: &Rendered, directives: &[(usize, Directive)]) -> Vec<String> {
    let sub = |s: &str| s.replace("@TMP@", &r.tmp);
    let g = &r.generated;
    let unit = |name: &str| g.units.iter().find(|u| u.name == name);
    let names: Vec<&str> = g.units.iter().map(|u| u.name.as_str()).collect();
    let mut fails = Vec::new();
    let mut matched = vec![false; r.errors.len()];
    for (n, d) in directives {
        let fail = match d {
            Directive::Contains { unit: u, line } => {
                let line = sub(line);
                match unit(u) {
                    None => Some(format!("no unit {u}; units: {names:?}")),
                    Some(f) if !f.content.lines().any(|l| l == line) => {
                        Some(format!("{u} has no line\n    {line}\n--- {u} ---\n{}", f.content))
                    }
                    Some(_) => None,
                }
            }
            Directive::NotContains { unit: u, text } => {
                let text = sub(text);
                match unit(u) {
                    None => Some(format!("no unit {u}; units: {names:?}")),
                    Some(f) if f.content.contains(&text) => {
                        Some(format!("{u} contains {text:?}\n--- {u} ---\n{}", f.content))
                    }
                    Some(_) => None,
                }
            }
            Directive::Absent { unit: u } => unit(u).map(|_| format!("unit {u} was rendered")),
            Directive::Link { dir, unit: u } => {
                let dir = sub(dir);
                (!g.links.iter().any(|l| l.dir == dir && l.unit == *u))
                    .then(|| format!("no link {dir}/{u}; links: {:?}", g.links))
            }
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
                (g.units.len() != *want).then(|| format!("{} units, expected {want}: {names:?}", g.units.len()))
            }
            Directive::CaseDir(_) | Directive::AsDefaultConfig => None,
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
    if !directives
        .iter()
        .any(|(_, d)| !matches!(d, Directive::CaseDir(_) | Directive::AsDefaultConfig))
    {
        return vec!["expect has no assertions".into()];
    }
    match render_case(dir, &directives) {
        Ok(r) => check(&r, &directives),
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
fn unit_fixtures() {
    let dirs = case_dirs();
    assert!(
        dirs.len() >= 12,
        "expected the fixture cases under {CASES}, found {dirs:?}"
    );
    let mut report = String::new();
    for dir in &dirs {
        let case = dir.file_name().unwrap().to_string_lossy();
        for f in run_case(dir) {
            report.push_str(&format!("\n[{case}] {f}\n"));
        }
    }
    assert!(report.is_empty(), "fixture failures:{report}");
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
    let dir = Path::new(CASES).join("requires-wants");
    let wrong = [
        "## assert-contains homelab-apps-app.service Requires=homelab-apps-cache.service",
        "## assert-not-contains homelab-apps-app.service Wants=homelab-apps-cache.service",
        "## assert-absent homelab-apps-app.service",
        "## assert-link multi-user.target.wants/homelab-apps.target",
        "## assert-error apps-app anything",
        "## assert-count-units 1",
        "## assert-contains homelab-nope.service X=1",
    ];
    let directives = parse_expect(&wrong.join("\n")).unwrap();
    let r = render_case(&dir, &directives).unwrap();
    let fails = check(&r, &directives);
    let lines: Vec<&str> = fails.iter().map(|f| f.split(':').next().unwrap()).collect();
    assert_eq!(
        lines,
        ["line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7"],
        "{fails:#?}"
    );
    // An error the expect does not mention fails the case.
    let dir = Path::new(CASES).join("broken");
    let directives = parse_expect("## assert-count-units 0\n").unwrap();
    let r = render_case(&dir, &directives).unwrap();
    assert!(check(&r, &directives).iter().any(|f| f.starts_with("unexpected error")));
}
