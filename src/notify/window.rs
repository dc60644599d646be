//! The collection window: ten units failing together give one message. Each notifier
//! appends its unit to `pending` in the runtime directory (/run/hlsys/notify), then takes
//! the lock (blocking). The holder that finds `pending` non-empty waits, the lock held,
//! until nothing was added for [`WINDOW`] (at most [`MAX_WAIT`]: stacks that fail
//! together reach their start limits seconds apart, 8 s for ten in the e2e test), takes
//! everything appended by then (truncating it) and sends one message; the others, once they get the lock, find their entry taken and exit. An
//! entry is always read by some holder: its writer takes the lock after writing it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// How long no further failure must come before the message goes out.
pub const WINDOW: Duration = Duration::from_secs(5);
/// The longest the first failure waits for others.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Records `unit` and returns the units to report now (empty: another notifier took it).
pub fn collect(dir: &Path, unit: &str, window: Duration) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pending = dir.join("pending");
    {
        let mut f = open(&pending)?;
        f.write_all(format!("{unit}\n").as_bytes())?;
    }
    let lock = Flock::lock(open(&dir.join("lock"))?, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("locking {}: {e}", dir.display()))?;
    if std::fs::metadata(&pending)?.len() == 0 {
        return Ok(Vec::new());
    }
    let t0 = std::time::Instant::now();
    let (mut len, mut changed) = (std::fs::metadata(&pending)?.len(), t0);
    let step = (window / 5).max(Duration::from_millis(20));
    while changed.elapsed() < window && t0.elapsed() < MAX_WAIT {
        std::thread::sleep(step);
        let now = std::fs::metadata(&pending)?.len();
        if now != len {
            (len, changed) = (now, std::time::Instant::now());
        }
    }
    let mut f = open(&pending)?;
    let mut text = String::new();
    f.rewind()?;
    f.read_to_string(&mut text)?;
    f.set_len(0)?;
    drop(lock);
    let mut units: Vec<String> = Vec::new();
    for u in text.lines().filter(|l| !l.is_empty()) {
        if !units.iter().any(|x| x == u) {
            units.push(u.to_string());
        }
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_failures_give_one_batch() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    // Spread over three windows: each failure keeps the window open.
                    std::thread::sleep(Duration::from_millis(100 * i));
                    collect(&dir, &format!("homelab-s{i}.service"), Duration::from_millis(300)).unwrap()
                })
            })
            .collect();
        let batches: Vec<Vec<String>> = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|b| !b.is_empty())
            .collect();
        assert_eq!(batches.len(), 1, "{batches:?}");
        assert_eq!(batches[0].len(), 10);
    }
}
