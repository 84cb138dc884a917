//! Work-item secret decoding (§1.2) and the default worker id (§3.4.1).
//!
//! Nothing here logs: the secret and the token derived from it are credentials.

use serde_json::Value;

/// Extracts `sessions_token` from a work item's `secret` (§1.2 rules).
///
/// The secret is URL-safe base64 (padding optional; standard-alphabet characters and
/// stray non-alphabet characters are tolerated like Python's lenient decoder) of a JSON
/// object. Returns the token when `sessions_token` is a non-empty string, otherwise `None`
/// (absent/empty secret, undecodable base64, not JSON, not an object, missing/empty token).
pub fn decode_sessions_token(secret: Option<&str>) -> Option<String> {
    let secret = secret.filter(|s| !s.is_empty())?;
    let bytes = python_urlsafe_b64decode(secret)?;
    // Python's `json.loads(bytes)` accepts a UTF-8 byte-order mark.
    let json = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let payload: Value = serde_json::from_slice(json).ok()?;
    match payload.as_object()?.get("sessions_token")? {
        Value::String(token) if !token.is_empty() => Some(token.clone()),
        _ => None,
    }
}

/// Python's `base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))`, byte for byte (§1.2).
///
/// Hand-written because no base64 crate reproduces CPython's non-strict decoder: bytes
/// outside the alphabet are skipped, both `-_` and `+/` are accepted, a `=` that completes
/// a quad ends decoding (later input is ignored), other `=` are skipped, and a final
/// partial quad is an error. Non-ASCII input is rejected, as Python does for `str`.
fn python_urlsafe_b64decode(text: &str) -> Option<Vec<u8>> {
    if !text.is_ascii() {
        return None;
    }
    let padded_len = text.len().div_ceil(4) * 4;
    let input = text.bytes().chain(std::iter::repeat(b'=')).take(padded_len);
    let mut out = Vec::with_capacity(padded_len / 4 * 3);
    let (mut quad_pos, mut pads, mut left) = (0u8, 0u8, 0u8);
    for byte in input {
        if byte == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    return Some(out);
                }
            }
            continue;
        }
        let Some(value) = sextet(byte) else {
            continue;
        };
        pads = 0;
        match quad_pos {
            0 => left = value,
            1 => {
                out.push((left << 2) | (value >> 4));
                left = value & 0x0f;
            }
            2 => {
                out.push((left << 4) | (value >> 2));
                left = value & 0x03;
            }
            _ => out.push((left << 6) | value),
        }
        quad_pos = (quad_pos + 1) % 4;
    }
    (quad_pos == 0).then_some(out)
}

fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// A worker id unique per process: `<hostname>-<12 random hex digits>` (§3.4.1).
/// Falls back to `sandkeep` when the host name cannot be read.
pub fn default_worker_id() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "sandkeep".to_owned());
    let random: [u8; 6] = rand::random();
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;

    #[test]
    fn unpadded_urlsafe_secret_yields_token() {
        let secret = URL_SAFE_NO_PAD.encode(br#"{"sessions_token":"sess_tok_1"}"#);
        assert!(!secret.ends_with('='));
        assert_eq!(
            decode_sessions_token(Some(&secret)).as_deref(),
            Some("sess_tok_1")
        );
        let padded = URL_SAFE.encode(br#"{"sessions_token":"sess_tok_1","x":1}"#);
        assert_eq!(
            decode_sessions_token(Some(&padded)).as_deref(),
            Some("sess_tok_1")
        );
    }

    #[test]
    fn standard_alphabet_and_junk_are_tolerated() {
        // Bytes chosen so the standard encoding contains '+' and '/'.
        let payload = br#"{"sessions_token":"tok>>>???","k":"~~~"}"#;
        let standard = STANDARD.encode(payload);
        assert!(standard.contains('+') || standard.contains('/'));
        assert_eq!(
            decode_sessions_token(Some(&standard)).as_deref(),
            Some("tok>>>???")
        );
    }

    /// Expected outputs captured from CPython 3.11 `base64.urlsafe_b64decode` after the
    /// §1.2 padding step (`None` = Python raised).
    #[test]
    fn decoder_matches_python_on_edge_cases() {
        let tok = "eyJzZXNzaW9uc190b2tlbiI6ICJ0In0";
        let full = br#"{"sessions_token": "t"}"#.to_vec();
        let cases: Vec<(String, Option<Vec<u8>>)> = vec![
            (tok.into(), Some(full.clone())),
            (format!("{tok}="), Some(full.clone())),
            (format!("{tok}==="), Some(full.clone())),
            ("ey=JzXNzaW9uc190b2tlbiI6ICJ0In0".into(), None),
            ("eyJz=ZXNzaW9uc190b2tlbiI6ICJ0In0".into(), None),
            (
                "eyJ==zZXNzaW9uc190b2tlbiI6ICJ0In0".into(),
                Some(vec![123, 34]),
            ),
            (format!(" {tok}"), None),
            (format!("{tok}!!"), Some(full.clone())),
            (format!("\u{e9}{tok}"), None),
            ("ab=c".into(), None),
            ("abc".into(), Some(vec![105, 183])),
            ("ab".into(), Some(vec![105])),
            ("a".into(), None),
            ("====".into(), Some(vec![])),
            ("YWJj=ZGVm".into(), Some(b"abcdef".to_vec())),
            ("YQ==YWJj".into(), Some(b"a".to_vec())),
            ("YQ=YWJj".into(), None),
        ];
        for (input, expected) in cases {
            assert_eq!(python_urlsafe_b64decode(&input), expected, "{input:?}");
        }
        assert_eq!(decode_sessions_token(Some(tok)).as_deref(), Some("t"));
        let bom = URL_SAFE_NO_PAD.encode(b"\xef\xbb\xbf{\"sessions_token\":\"b\"}");
        assert_eq!(decode_sessions_token(Some(&bom)).as_deref(), Some("b"));
    }

    #[test]
    fn rejects_everything_else() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s.as_bytes());
        assert_eq!(decode_sessions_token(None), None);
        assert_eq!(decode_sessions_token(Some("")), None);
        assert_eq!(decode_sessions_token(Some("a")), None, "impossible length");
        assert_eq!(decode_sessions_token(Some(&enc("not json"))), None);
        assert_eq!(
            decode_sessions_token(Some(&enc("[\"sessions_token\"]"))),
            None
        );
        assert_eq!(
            decode_sessions_token(Some(&enc("\"sessions_token\""))),
            None
        );
        assert_eq!(decode_sessions_token(Some(&enc("{}"))), None);
        assert_eq!(
            decode_sessions_token(Some(&enc(r#"{"sessions_token":""}"#))),
            None
        );
        assert_eq!(
            decode_sessions_token(Some(&enc(r#"{"sessions_token":42}"#))),
            None
        );
        assert_eq!(
            decode_sessions_token(Some(&enc(r#"{"sessions_token":null}"#))),
            None
        );
    }

    #[test]
    fn worker_id_shape() {
        let id = default_worker_id();
        let (host, suffix) = id.rsplit_once('-').expect("has a dash");
        assert!(!host.is_empty());
        assert_eq!(suffix.len(), 12);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(default_worker_id(), id, "unique per call");
    }
}
