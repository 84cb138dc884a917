//! Sleep and retry timings of protocol.md §4.1.
//!
//! Each function returns the duration to wait; the callers do the waiting so
//! that a shutdown or lease end can interrupt it.

use rand::Rng;
use std::time::Duration;

/// Poll/ack failure backoff: `min(60, 2^attempt)` s plus uniform `[0, 1)` s.
/// `attempt` starts at 1 (the first failure).
pub fn poll_failure(attempt: u32) -> Duration {
    Duration::from_secs_f64(poll_failure_base(attempt) + rand::rng().random_range(0.0..1.0))
}

/// The deterministic part of [`poll_failure`].
pub fn poll_failure_base(attempt: u32) -> f64 {
    // 2^6 already exceeds the cap; clamping the exponent avoids overflow.
    2f64.powi(attempt.min(6) as i32).min(60.0)
}

/// Sleep after an empty poll: uniform `[1.0, 3.0)` s.
pub fn empty_poll() -> Duration {
    Duration::from_secs_f64(rand::rng().random_range(1.0..3.0))
}

/// Result-send backoff for attempt `n` (1-based): `d = min(30, 2^(n-1))`,
/// uniform in `[d/2, d)`.
pub fn result_send(attempt: u32) -> Duration {
    let d = result_send_cap(attempt);
    Duration::from_secs_f64(rand::rng().random_range(d / 2.0..d))
}

fn result_send_cap(attempt: u32) -> f64 {
    2f64.powi(attempt.saturating_sub(1).min(5) as i32).min(30.0)
}

/// Heartbeat interval after a response carrying `ttl_seconds`:
/// `max(1, min(ttl/2, 30))` s, or `None` (keep the current one) when `ttl <= 0`.
pub fn heartbeat_interval(ttl_seconds: i64) -> Option<Duration> {
    (ttl_seconds > 0).then(|| Duration::from_secs_f64((ttl_seconds as f64 / 2.0).clamp(1.0, 30.0)))
}

/// Stream reconnect backoff: 0.5 s, doubling after every disconnect, capped at
/// 10 s, reset to 0.5 s whenever an event arrives.
#[derive(Debug, Clone)]
pub struct Reconnect {
    next: Duration,
}

impl Reconnect {
    const START: Duration = Duration::from_millis(500);
    const CAP: Duration = Duration::from_secs(10);

    pub fn new() -> Self {
        Self { next: Self::START }
    }

    /// The wait before the next reconnect; doubles the one after it.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::CAP);
        wait
    }

    pub fn reset(&mut self) {
        self.next = Self::START;
    }
}

impl Default for Reconnect {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_backoff_bases_and_jitter() {
        assert_eq!(poll_failure_base(1), 2.0);
        assert_eq!(poll_failure_base(2), 4.0);
        assert_eq!(poll_failure_base(5), 32.0);
        assert_eq!(poll_failure_base(6), 60.0);
        assert_eq!(poll_failure_base(100), 60.0);
        for attempt in [1, 2, 100] {
            for _ in 0..200 {
                let d = poll_failure(attempt).as_secs_f64();
                let base = poll_failure_base(attempt);
                assert!(
                    d >= base && d < base + 1.0,
                    "{d} outside [{base}, {base}+1)"
                );
            }
        }
    }

    #[test]
    fn empty_poll_within_bounds() {
        for _ in 0..500 {
            let d = empty_poll().as_secs_f64();
            assert!((1.0..3.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn result_send_bounds() {
        let expected = [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (5, 16.0),
            (6, 30.0),
            (40, 30.0),
        ];
        for (n, d) in expected {
            assert_eq!(result_send_cap(n), d);
            for _ in 0..100 {
                let s = result_send(n).as_secs_f64();
                assert!(s >= d / 2.0 && s < d, "attempt {n}: {s}");
            }
        }
    }

    #[test]
    fn heartbeat_interval_from_ttl() {
        assert_eq!(heartbeat_interval(60), Some(Duration::from_secs(30)));
        assert_eq!(heartbeat_interval(300), Some(Duration::from_secs(30)));
        assert_eq!(heartbeat_interval(4), Some(Duration::from_secs(2)));
        assert_eq!(heartbeat_interval(1), Some(Duration::from_secs(1)));
        assert_eq!(heartbeat_interval(0), None);
        assert_eq!(heartbeat_interval(-5), None);
    }

    #[test]
    fn reconnect_doubles_caps_and_resets() {
        let mut r = Reconnect::new();
        let waits: Vec<f64> = (0..7).map(|_| r.next_wait().as_secs_f64()).collect();
        assert_eq!(waits, vec![0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
        r.reset();
        assert_eq!(r.next_wait(), Duration::from_millis(500));
    }
}
