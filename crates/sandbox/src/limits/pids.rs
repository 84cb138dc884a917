//! Did a call drive the session into its process limit? (sandbox.md §4 case 19)
//!
//! Read like the OOM counter: the pids controller's `pids.events` `max` counter
//! (v1 and v2) counts forks refused at the limit. A fork bomb such as
//! `:(){ :|:& };:` returns at once and keeps forking in the background, so the
//! limit is often reached only just after the call answered: when the session's
//! process count grew during the call, the count is watched briefly until it stops
//! growing. Calls that leave no new process behind pay one read of two files.

use super::SessionLimits;
use std::fs;
use std::time::{Duration, Instant};

/// The pids controller's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidsSnapshot {
    /// Forks refused at the limit so far (`pids.events` `max`).
    pub limit_hits: u64,
    /// Processes (tasks) in the session now (`pids.current`).
    pub current: u64,
}

/// How often, and how long at most, a growing process count is watched.
const WATCH_STEP: Duration = Duration::from_millis(2);
const WATCH_MAX: Duration = Duration::from_millis(100);
/// Consecutive samples without growth after which the count counts as settled.
const STEADY_SAMPLES: u32 = 2;
/// Tasks a session always has once it ran a command: the init and the shell (so
/// a call that started the shell is not taken for one that left jobs behind).
const RESIDENT_TASKS: u64 = 2;

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    LimitReached,
    Settled,
    Growing,
}

impl SessionLimits {
    /// Current counters; `None` without a pids cgroup (rlimits fallback).
    pub fn pids_snapshot(&self) -> Option<PidsSnapshot> {
        let dir = self.pids_dir.as_ref()?;
        let current = fs::read_to_string(dir.join("pids.current"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let events = fs::read_to_string(dir.join("pids.events")).unwrap_or_default();
        Some(PidsSnapshot {
            limit_hits: max_events(&events),
            current,
        })
    }

    /// Whether the session hit its process limit since `before` (taken when the
    /// call started). Waits up to [`WATCH_MAX`] only while the count keeps growing.
    pub fn process_limit_reached(&self, before: Option<PidsSnapshot>) -> bool {
        let Some(mut before) = before else {
            return false;
        };
        before.current = before.current.max(RESIDENT_TASKS);
        let started = Instant::now();
        let mut previous = before.current;
        let mut steady = 0;
        loop {
            let Some(now) = self.pids_snapshot() else {
                return false;
            };
            match judge(before, now, previous, self.pids_max) {
                Verdict::LimitReached => return true,
                Verdict::Settled => return false,
                Verdict::Growing if now.current > previous => steady = 0,
                Verdict::Growing => steady += 1,
            }
            if steady >= STEADY_SAMPLES || started.elapsed() >= WATCH_MAX {
                return false;
            }
            previous = now.current;
            std::thread::sleep(WATCH_STEP);
        }
    }
}

/// One sample's verdict. `previous` is the count of the sample before (or at the
/// call's start).
fn judge(before: PidsSnapshot, now: PidsSnapshot, previous: u64, max: u64) -> Verdict {
    if now.limit_hits > before.limit_hits || now.current >= max {
        Verdict::LimitReached
    } else if now.current <= before.current && previous == before.current {
        // Nothing new is alive after the call: no watch needed.
        Verdict::Settled
    } else {
        Verdict::Growing
    }
}

/// The `max` counter of a `pids.events` file (0 if absent).
fn max_events(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("max ").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(limit_hits: u64, current: u64) -> PidsSnapshot {
        PidsSnapshot {
            limit_hits,
            current,
        }
    }

    #[test]
    fn events_file_parses_the_max_counter_only() {
        assert_eq!(max_events("max 17\n"), 17);
        assert_eq!(max_events("max.imposed 3\nmax 5\n"), 5);
        assert_eq!(max_events(""), 0);
    }

    #[test]
    fn verdicts() {
        let before = snap(2, 2);
        // A refused fork, or the count at the limit, is a hit.
        assert_eq!(judge(before, snap(3, 2), 2, 64), Verdict::LimitReached);
        assert_eq!(judge(before, snap(2, 64), 2, 64), Verdict::LimitReached);
        // No new process alive: settled at once.
        assert_eq!(judge(before, snap(2, 2), 2, 64), Verdict::Settled);
        assert_eq!(judge(before, snap(2, 1), 2, 64), Verdict::Settled);
        // A background job (or a bomb on its way up) is watched.
        assert_eq!(judge(before, snap(2, 3), 2, 64), Verdict::Growing);
        assert_eq!(judge(before, snap(2, 20), 9, 64), Verdict::Growing);
    }
}
