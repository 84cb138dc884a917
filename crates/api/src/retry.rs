//! HTTP-layer retry policy shared by every call (§2.2).
//!
//! Pure functions so the policy can be tested without a server: which responses are
//! retried, and how long to wait before the next attempt.

use reqwest::header::HeaderMap;
use std::time::{Duration, SystemTime};

/// First backoff step in seconds (`0.5 · 2^n`).
const INITIAL_DELAY_SECS: f64 = 0.5;
/// Backoff ceiling in seconds.
const MAX_DELAY_SECS: f64 = 8.0;
/// Server-requested delays are clamped to this, so a misbehaving proxy cannot park a
/// worker for hours (the SDK waits up to ~50 days; see docs/notes/api-compat.md).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether a response with `status` should be retried: the `x-should-retry` header wins,
/// otherwise 408, 409, 429 and every 5xx are retried.
pub fn should_retry_status(status: u16, headers: &HeaderMap) -> bool {
    match header_str(headers, "x-should-retry") {
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        _ => matches!(status, 408 | 409 | 429) || status >= 500,
    }
}

/// Delay before retry number `retries_done + 1`.
///
/// `headers` are the failed response's headers (none for transport errors);
/// `jitter_sample` is a uniform sample in `[0, 1)` so the result is deterministic in tests.
/// Order: `retry-after-ms`, then `retry-after` (seconds or HTTP date), used when positive
/// and clamped to 60 s; otherwise `min(0.5·2^n, 8) s × (1 − 0.25·jitter_sample)`, a factor in `(0.75, 1]`.
pub fn retry_delay(
    retries_done: u32,
    headers: Option<&HeaderMap>,
    now: SystemTime,
    jitter_sample: f64,
) -> Duration {
    if let Some(requested) = headers.and_then(|h| server_requested_delay(h, now)) {
        if !requested.is_zero() {
            return requested.min(MAX_RETRY_AFTER);
        }
    }
    let exponent = i32::try_from(retries_done).unwrap_or(i32::MAX);
    let base = (INITIAL_DELAY_SECS * 2f64.powi(exponent)).min(MAX_DELAY_SECS);
    let factor = 1.0 - 0.25 * jitter_sample.clamp(0.0, 1.0);
    Duration::from_secs_f64(base * factor)
}

/// `retry-after-ms` (float milliseconds) or `retry-after` (float seconds or HTTP date).
fn server_requested_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = header_str(headers, "retry-after-ms").and_then(parse_non_negative) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header_str(headers, "retry-after")?;
    if let Some(secs) = parse_non_negative(value) {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    // A date in the past means "now"; zero then falls back to the computed backoff.
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_non_negative(text: &str) -> Option<f64> {
    let value: f64 = text.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retryable_statuses_and_override() {
        let none = HeaderMap::new();
        for status in [408, 409, 429, 500, 503, 529] {
            assert!(should_retry_status(status, &none), "{status}");
        }
        for status in [400, 401, 403, 404, 412, 422] {
            assert!(!should_retry_status(status, &none), "{status}");
        }
        assert!(!should_retry_status(
            409,
            &headers(&[("x-should-retry", "false")])
        ));
        assert!(should_retry_status(
            400,
            &headers(&[("x-should-retry", "true")])
        ));
        // Garbage values fall back to the status rule.
        assert!(should_retry_status(
            500,
            &headers(&[("x-should-retry", "maybe")])
        ));
    }

    #[test]
    fn exponential_backoff_with_jitter_bounds() {
        let now = SystemTime::now();
        let secs = |n, jitter| retry_delay(n, None, now, jitter).as_secs_f64();
        assert!((secs(0, 0.0) - 0.5).abs() < 1e-9);
        assert!((secs(1, 0.0) - 1.0).abs() < 1e-9);
        assert!((secs(2, 0.0) - 2.0).abs() < 1e-9);
        assert!((secs(4, 0.0) - 8.0).abs() < 1e-9);
        assert!((secs(30, 0.0) - 8.0).abs() < 1e-9, "capped at 8 s");
        // Jitter scales into (0.75, 1].
        assert!((secs(0, 0.999_999) - 0.375).abs() < 1e-5);
        assert!(secs(3, 0.5) > 4.0 * 0.75 && secs(3, 0.5) <= 4.0);
    }

    #[test]
    fn server_requested_delays() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ms = headers(&[("retry-after-ms", "250"), ("retry-after", "5")]);
        assert_eq!(
            retry_delay(0, Some(&ms), now, 0.0),
            Duration::from_millis(250)
        );
        let secs = headers(&[("retry-after", "1.5")]);
        assert_eq!(
            retry_delay(0, Some(&secs), now, 0.0),
            Duration::from_millis(1500)
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        let dated = headers(&[("retry-after", &date)]);
        assert_eq!(
            retry_delay(0, Some(&dated), now, 0.0),
            Duration::from_secs(7)
        );
        let long = headers(&[("retry-after", "3600")]);
        assert_eq!(
            retry_delay(0, Some(&long), now, 0.0),
            Duration::from_secs(60)
        );
        // Zero, negative or unparsable → computed backoff.
        for value in ["0", "-3", "soon"] {
            let h = headers(&[("retry-after", value)]);
            assert_eq!(
                retry_delay(1, Some(&h), now, 0.0),
                Duration::from_secs(1),
                "{value}"
            );
        }
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        let h = headers(&[("retry-after", &past)]);
        assert_eq!(
            retry_delay(0, Some(&h), now, 0.0),
            Duration::from_millis(500)
        );
    }
}
