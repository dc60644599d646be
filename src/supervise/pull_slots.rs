//! The bound on concurrent pulls (`max_parallel_pulls`) across the stacks' preparation
//! units: N lock files, one `flock` each; a preparation pulls only while it holds one.
//!
//! Why flock slots: the preparations are independent processes started by systemd at
//! once, with no daemon of hlsys to ask; a flock is released by the kernel when its
//! holder exits however it exits (a killed or timed-out preparation never leaks a
//! slot), needs nothing but a directory, and a holder can be seen with `fuser`.
//! A waiter polls every slot instead of blocking on one, so it takes the first that
//! frees up, whichever it is.
//!
//! Slots go to the start order first: with dozens of stacks pulling at a first boot and a
//! few slots, a stack whose turn comes early must not wait behind pulls whose stacks
//! start last. Each waiter holds a ticket, `wait-<rank>-<pid>` (its rank: how many layers
//! come before its own, hlsys_core::model::Model::layer_depth), flocked while it waits; a
//! waiter takes a free slot only when no live ticket of a lower rank exists. A ticket whose
//! lock can be taken is a dead waiter's, and is removed. Best effort by design (two
//! waiters may look at once); the bound itself is the slots' and always holds.

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

/// A waiter's place in line, held (locked) while it waits; removed when dropped.
struct Ticket {
    path: PathBuf,
    rank: u32,
    _lock: Flock<File>,
}

impl Ticket {
    fn take(dir: &Path, rank: u32) -> Result<Ticket> {
        let path = dir.join(format!("wait-{rank}-{}", std::process::id()));
        let f = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let lock = Flock::lock(f, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| e)
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Ticket {
            path,
            rank,
            _lock: lock,
        })
    }

    /// Whether a live waiter of a lower rank is in line (dead waiters' tickets are removed).
    fn outranked(&self, dir: &Path) -> Result<bool> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            let rank = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("wait-"))
                .and_then(|n| n.split('-').next())
                .and_then(|r| r.parse::<u32>().ok());
            if !rank.is_some_and(|r| r < self.rank) {
                continue;
            }
            let Ok(f) = File::open(&path) else { continue }; // gone meanwhile
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Err(_) => return Ok(true), // its waiter holds it
                Ok(_) => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(false)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits for one of `n` (≥ 1) slots in `dir`, after every waiter of a lower `rank`;
/// `waiting` is called on every poll while it waits (to report and to keep the start
/// timeout away).
pub async fn acquire(dir: &Path, n: u32, rank: u32, mut waiting: impl FnMut()) -> Result<Slot> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ticket = Ticket::take(dir, rank)?;
    loop {
        if !ticket.outranked(dir)? {
            if let Some(slot) = try_any(dir, n.max(1))? {
                return Ok(slot);
            }
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
        let a = acquire(d.path(), 2, 0, || panic!("a slot is free")).await.unwrap();
        let b = acquire(d.path(), 2, 0, || panic!("a slot is free")).await.unwrap();
        assert_ne!(a.index, b.index);
        // Both taken: the third waits (flock is per open file, so this process counts
        // as another holder), until one is dropped.
        let mut polls = 0;
        let c = tokio::time::timeout(
            Duration::from_secs(5),
            acquire(d.path(), 2, 0, || {
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

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_lower_rank_and_dead_tickets_do_not_count() {
        let d = tempfile::tempdir().unwrap();
        // A dead waiter's ticket (no lock held) of rank 0: ignored, and removed.
        std::fs::write(d.path().join("wait-0-999999"), "").unwrap();
        let held = acquire(d.path(), 1, 5, || panic!("a slot is free")).await.unwrap();
        assert!(!d.path().join("wait-0-999999").exists());
        let order = std::sync::Mutex::new(Vec::new());
        let dir = d.path();
        let waiter = |rank: u32| {
            let order = &order;
            async move {
                let slot = acquire(dir, 1, rank, || {}).await.unwrap();
                order.lock().unwrap().push(rank);
                tokio::time::sleep(Duration::from_millis(250)).await;
                drop(slot);
            }
        };
        // The rank-2 waiter is in line first and polls at 0, 100, 200… ms, the rank-1 one at
        // 150, 250… ms: when the slot frees at 460 ms, the rank-2 waiter looks first
        // (500 ms) and must give way.
        let late = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            waiter(1).await
        };
        let dropper = async {
            tokio::time::sleep(Duration::from_millis(460)).await;
            drop(held);
        };
        tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(waiter(2), late, dropper)
        })
        .await
        .expect("a waiter never got the slot");
        assert_eq!(*order.lock().unwrap(), [1, 2], "the lower rank goes first");
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.iter().all(|n| n.to_str().unwrap().ends_with(".lock")), "{left:?}");
    }
}
