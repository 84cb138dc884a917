//! Opaque ids and timestamps shared by every resource.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `prefix_` followed by 24 random lowercase hex characters.
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..24])
}

/// A secret-looking random token (keys, sessions tokens).
pub fn new_token(prefix: &str) -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{a}{b}")
}

/// RFC 3339 UTC timestamp with sub-second precision.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

pub fn now() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_unique() {
        let a = new_id("env");
        let b = new_id("env");
        assert!(a.starts_with("env_") && a.len() == 28);
        assert_ne!(a, b);
    }

    #[test]
    fn timestamps_parse_back() {
        let s = now();
        assert!(OffsetDateTime::parse(&s, &Rfc3339).is_ok(), "{s}");
    }
}
