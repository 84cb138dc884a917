//! Per-session subordinate uid ranges for a root worker: slot `n` maps the
//! sandbox's uids 0..65536 to host `BASE + n·65536 ..`, so host DAC separates
//! sessions. A slot is held by an `flock` on a file under `/run/sandkeep`, which
//! also keeps several workers on one host apart.

use anyhow::Context;
use std::fs::File;
use std::os::fd::AsRawFd;

pub const BASE: u32 = 1_000_000;
pub const RANGE: u32 = 65_536;
const SLOTS: u32 = 4096;
const LOCK_DIR: &str = "/run/sandkeep/uid-slots";

/// A held slot; released when dropped.
#[derive(Debug)]
pub struct UidSlot {
    pub base: u32,
    _lock: File,
}

/// Take the first free slot.
pub fn acquire() -> anyhow::Result<UidSlot> {
    std::fs::create_dir_all(LOCK_DIR).with_context(|| format!("creating {LOCK_DIR}"))?;
    for slot in 0..SLOTS {
        let file = File::create(format!("{LOCK_DIR}/{slot}"))
            .with_context(|| format!("creating a lock in {LOCK_DIR}"))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(UidSlot {
                base: BASE + slot * RANGE,
                _lock: file,
            });
        }
    }
    anyhow::bail!("all {SLOTS} sandbox uid ranges are in use; close idle sessions")
}
