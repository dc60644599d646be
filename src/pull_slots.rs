//! The bound on concurrent pulls (`max_parallel_pulls`) across the stacks' preparation
//! units: N lock files, one `flock` each; a preparation pulls only while it holds one.
//!
//! Why flock slots: the preparations are independent processes started by systemd at
//! once, with no daemon of hlsys to ask; a flock is released by the kernel when its
//! holder exits however it exits (a killed or timed-out preparation never leaks a
//! slot), needs nothing but a directory, and a holder can be seen with `fuser`.
//! A waiter polls every slot instead of blocking on one, so it takes the first that
//! frees up, whichever it is.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// Where the slots live (a tmpfs: they mean nothing after a reboot).
pub const SLOTS_DIR: &str = "/run/hlsys/pull-slots";

const POLL: Duration = Duration::from_millis(100);

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _lock: Flock<File>,
    pub index: u32,
}

fn slot_path(dir: &Path, i: u32) -> PathBuf {
    dir.join(format!("{i}.lock"))
}

/// Tries every slot once, without waiting.
fn try_any(dir: &Path, n: u32) -> Result<Option<Slot>> {
    for i in 0..n {
        let path = slot_path(dir, i);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the pull slot {}", path.display()))?;
        if let Ok(lock) = Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            return Ok(Some(Slot { _lock: lock, index: i }));
        }
    }
    Ok(None)
}

/// Waits for one of `n` (≥ 1) slots in `dir`; `waiting` is called on every poll while
/// all are taken (to report and to keep the start timeout away).
pub async fn acquire(dir: &Path, n: u32, mut waiting: impl FnMut()) -> Result<Slot> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    loop {
        if let Some(slot) = try_any(dir, n.max(1))? {
            return Ok(slot);
        }
        waiting();
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_n_holders_and_a_freed_slot_is_taken() {
        let d = tempfile::tempdir().unwrap();
        let a = acquire(d.path(), 2, || panic!("a slot is free")).await.unwrap();
        let b = acquire(d.path(), 2, || panic!("a slot is free")).await.unwrap();
        assert_ne!(a.index, b.index);
        // Both taken: the third waits (flock is per open file, so this process counts
        // as another holder), until one is dropped.
        let mut polls = 0;
        let c = tokio::time::timeout(
            Duration::from_secs(5),
            acquire(d.path(), 2, || {
                polls += 1;
            }),
        );
        let dropper = async {
            tokio::time::sleep(Duration::from_millis(350)).await;
            drop(a);
        };
        let (c, ()) = tokio::join!(c, dropper);
        let c = c.expect("the freed slot was not taken").unwrap();
        assert!(polls >= 2, "it did not wait ({polls} polls)");
        assert_ne!(c.index, b.index);
    }
}
