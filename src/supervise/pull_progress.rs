//! What `docker compose pull` says (COMPOSE_PROGRESS=plain), one line at a time, turned
//! into a short progress text for STATUS= — "pulling 1/3 images, 0.4 of 1.2 GB" — and
//! into a reason when a service's pull fails.
//!
//! Only counts, sizes and service names (keys of the compose file) go into the text:
//! an image reference can be interpolated from an env file, and no env value may reach
//! STATUS=. Compose's lines (which do name images) go to the journal as they are.
//!
//! The lines are `<service> Pulling|Pulled|Skipped …|Error <message>` and
//! `<layer id> Pulling fs layer|Waiting|Downloading [==>  ] 1.2MB/43MB|Verifying
//! Checksum|Download complete|Extracting …|Pull complete|Already exists`.

use std::collections::{BTreeMap, BTreeSet};

/// Why a service's pull failed, as far as Docker's message tells (never the message
/// itself: it names the registry and the image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFailure {
    Unreachable,
    NotFound,
    Denied,
    Other,
}

impl PullFailure {
    fn of(message: &str) -> PullFailure {
        let m = message.to_lowercase();
        let any = |words: &[&str]| words.iter().any(|w| m.contains(w));
        if any(&["denied", "unauthorized", "authentication required"]) {
            PullFailure::Denied
        } else if any(&["not found", "manifest unknown", "does not exist"]) {
            PullFailure::NotFound
        } else if any(&[
            "connection refused",
            "no such host",
            "dial tcp",
            "timeout",
            "i/o timeout",
            "unreachable",
        ]) {
            PullFailure::Unreachable
        } else {
            PullFailure::Other
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            PullFailure::Unreachable => "registry unreachable",
            PullFailure::NotFound => "image not found in the registry",
            PullFailure::Denied => "access denied by the registry",
            PullFailure::Other => "pull failed",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Layer {
    done: u64,
    total: u64,
}

/// The state of one `compose pull`, fed line by line.
#[derive(Debug, Default)]
pub struct PullProgress {
    /// The stack's services: tells service lines from layer lines.
    services: BTreeSet<String>,
    pulling: BTreeSet<String>,
    pulled: BTreeSet<String>,
    layers: BTreeMap<String, Layer>,
    pub failures: Vec<(String, PullFailure)>,
}

impl PullProgress {
    pub fn new(services: &[String]) -> PullProgress {
        PullProgress {
            services: services.iter().cloned().collect(),
            ..Default::default()
        }
    }

    /// Takes one line of Compose's output; true when the progress text may have changed.
    pub fn feed(&mut self, line: &str) -> bool {
        let line = line.trim();
        let Some((who, what)) = line.split_once(' ') else {
            return false;
        };
        let what = what.trim();
        if self.services.contains(who) {
            return self.service_line(who, what);
        }
        let layer = self.layers.entry(who.to_string()).or_default();
        if what.starts_with("Downloading") {
            if let Some((done, total)) = what.rsplit(' ').next().and_then(sizes) {
                *layer = Layer { done, total };
                return true;
            }
        } else if what == "Download complete" || what == "Pull complete" {
            layer.done = layer.total;
            return true;
        } else if what == "Already exists" {
            // Present locally: not part of what this pull downloads.
            self.layers.remove(who);
        }
        false
    }

    fn service_line(&mut self, service: &str, what: &str) -> bool {
        if what.starts_with("Pulling") {
            self.pulling.insert(service.to_string());
        } else if what.starts_with("Pulled") {
            self.pulled.insert(service.to_string());
        } else if let Some(message) = what.strip_prefix("Error") {
            self.failures.push((service.to_string(), PullFailure::of(message)));
        } else {
            return false;
        }
        true
    }

    /// "pulling 1/3 images, 0.4 of 1.2 GB" (sizes of the layers Docker has started to
    /// download: the others' sizes are not known yet).
    pub fn text(&self) -> String {
        let (done, total) = self.layers.values().fold((0, 0), |(d, t), l| (d + l.done, t + l.total));
        let mut s = format!("pulling {}/{} images", self.pulled.len(), self.pulling.len());
        if total > 0 {
            s.push_str(&format!(", {}", of_size(done, total)));
        }
        s
    }

    /// The services whose pull failed, with why: "embed (registry unreachable)".
    pub fn failure_text(&self) -> Option<String> {
        (!self.failures.is_empty()).then(|| {
            self.failures
                .iter()
                .map(|(svc, why)| format!("{svc} ({})", why.text()))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// "27.01MB/43.02MB" → bytes (Docker writes sizes in powers of 1000).
fn sizes(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('/')?;
    Some((bytes(a)?, bytes(b)?))
}

fn bytes(s: &str) -> Option<u64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let factor = match unit {
        "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    };
    let n: f64 = num.parse().ok()?;
    Some((n * factor) as u64)
}

/// "0.4 of 1.2 GB", "35 of 120 MB": one unit, chosen by the total.
fn of_size(done: u64, total: u64) -> String {
    if total >= 1_000_000_000 {
        format!("{:.1} of {:.1} GB", done as f64 / 1e9, total as f64 / 1e9)
    } else {
        format!("{:.0} of {:.0} MB", done as f64 / 1e6, total as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut PullProgress, lines: &str) {
        for l in lines.lines() {
            p.feed(l);
        }
    }

    #[test]
    fn counts_images_and_bytes_from_compose_output() {
        let mut p = PullProgress::new(&["web".into(), "db".into(), "cache".into()]);
        feed(
            &mut p,
            " web Pulling \n db Pulling \n cache Skipped - Image is already present locally \n\
             71eabc5ba030 Pulling fs layer \n 9f1b2c3d4e5f Already exists \n\
             71eabc5ba030 Downloading [====>    ]  400MB/1.5GB\n\
             0a1b2c3d4e5f Downloading [=>       ]  100MB/500MB\n",
        );
        assert_eq!(p.text(), "pulling 0/2 images, 0.5 of 2.0 GB");
        feed(
            &mut p,
            " 0a1b2c3d4e5f Verifying Checksum \n 0a1b2c3d4e5f Download complete \n\
             0a1b2c3d4e5f Extracting [==>   ]  20MB/500MB\n 0a1b2c3d4e5f Pull complete \n db Pulled \n",
        );
        assert_eq!(p.text(), "pulling 1/2 images, 0.9 of 2.0 GB");
        assert_eq!(p.failure_text(), None);
    }

    #[test]
    fn small_pulls_in_megabytes_and_no_sizes_before_any_download() {
        let mut p = PullProgress::new(&["a".into()]);
        assert!(p.feed(" a Pulling "));
        assert_eq!(p.text(), "pulling 0/1 images");
        p.feed(" 71eabc5ba030 Downloading [>   ]  440.3kB/43.02MB");
        assert_eq!(p.text(), "pulling 0/1 images, 0 of 43 MB");
    }

    #[test]
    fn failures_name_the_service_and_a_reason_never_the_message() {
        let mut p = PullProgress::new(&["a".into(), "b".into()]);
        p.feed(
            r#" a Error Get "http://registry.example:5000/v2/": dial tcp 10.0.0.9:5000: connect: connection refused"#,
        );
        p.feed(" b Error manifest for registry.example/secret-name:1 not found: manifest unknown");
        let t = p.failure_text().unwrap();
        assert_eq!(t, "a (registry unreachable), b (image not found in the registry)");
        assert!(!t.contains("example"));
    }
}
