//! Client configuration, helper tags and validation of caller-supplied settings
//! (§1.5 scoped-client rules, §1.6 headers).

use crate::error::ApiError;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use std::time::Duration;
use url::Url;

pub(crate) const HELPER_HEADER: &str = "x-stainless-helper";

/// Which helper a client acts as; sent as `x-stainless-helper` (§1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    /// Poll and ack with the environment key: `environments-work-poller`.
    WorkPoller,
    /// Per-item calls (heartbeat, stop, session, skills): `environments-worker`.
    Worker,
    /// Session event stream/list/send: `session-tool-runner`.
    SessionToolRunner,
    /// Operator tooling: no helper tag.
    None,
}

impl Helper {
    /// The wire tag, `None` for [`Helper::None`].
    pub fn tag(self) -> Option<&'static str> {
        match self {
            Helper::WorkPoller => Some("environments-work-poller"),
            Helper::Worker => Some("environments-worker"),
            Helper::SessionToolRunner => Some("session-tool-runner"),
            Helper::None => None,
        }
    }
}

/// Settings shared by every client derived from one [`Client::new`].
#[derive(Clone)]
pub struct ClientConfig {
    /// Control-plane root, e.g. `https://api.anthropic.com` (a path prefix is kept).
    pub base_url: String,
    /// HTTP-layer retries after the first attempt (§2.2).
    pub max_retries: u32,
    pub connect_timeout: Duration,
    /// Total time for a buffered call, and the longest silence tolerated between two
    /// body chunks of the event stream or a skill download.
    pub request_timeout: Duration,
    /// Headers added to every request. `Authorization`/`X-Api-Key` are dropped;
    /// `x-stainless-helper` values are appended to the helper tag.
    pub extra_headers: Vec<(String, String)>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: "https://api.anthropic.com".to_owned(),
            max_retries: 2,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(600),
            extra_headers: Vec::new(),
        }
    }
}

impl ClientConfig {
    /// Defaults overridden by `ANTHROPIC_BASE_URL` and `ANTHROPIC_CUSTOM_HEADERS`
    /// (newline-separated `Name: value` lines), as the SDK reads them (§2.1).
    pub fn from_env() -> Result<ClientConfig, ApiError> {
        ClientConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// [`ClientConfig::from_env`] with an injectable variable lookup (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<ClientConfig, ApiError> {
        let mut config = ClientConfig::default();
        if let Some(base_url) = var("ANTHROPIC_BASE_URL").filter(|v| !v.trim().is_empty()) {
            config.base_url = base_url.trim().to_owned();
        }
        if let Some(text) = var("ANTHROPIC_CUSTOM_HEADERS") {
            config.extra_headers = parse_custom_headers(&text)?;
        }
        Ok(config)
    }
}

/// Parses `Name: value` lines; blank lines are skipped, anything else is an error.
pub fn parse_custom_headers(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), value.trim().to_owned()))
            }
            _ => Err(ApiError::Config(format!(
                "ANTHROPIC_CUSTOM_HEADERS line `{line}` is not of the form `Name: value`"
            ))),
        })
        .collect()
}

/// Prints header names only: caller headers may carry credentials of their own.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.extra_headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("max_retries", &self.max_retries)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("extra_headers", &header_names)
            .finish()
    }
}

pub(crate) fn parse_base_url(text: &str) -> Result<Url, ApiError> {
    let trimmed = text.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|err| {
        ApiError::Config(format!(
            "base URL `{text}` is not a valid URL ({err}); use e.g. https://api.anthropic.com"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ApiError::Config(format!(
            "base URL `{text}` must start with http:// or https://"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::Config(format!(
            "base URL `{text}` must not contain a query or fragment"
        )));
    }
    Ok(url)
}

/// Validates caller headers; drops credential headers, splits out helper values.
pub(crate) fn validate_extra_headers(
    pairs: &[(String, String)],
) -> Result<(HeaderMap, Vec<String>), ApiError> {
    let mut headers = HeaderMap::new();
    let mut helper_values = Vec::new();
    for (name, value) in pairs {
        let header_name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            ApiError::Config(format!(
                "extra header name `{name}` is not a valid HTTP header name"
            ))
        })?;
        if header_name == AUTHORIZATION || header_name.as_str() == "x-api-key" {
            // The scoped credential is the only one ever sent (§1.5 rule 3).
            continue;
        }
        if header_name.as_str() == HELPER_HEADER {
            helper_values.extend(split_list(value));
            continue;
        }
        let header_value = HeaderValue::from_str(value.trim()).map_err(|_| {
            ApiError::Config(format!(
                "extra header `{name}` has a value that cannot be sent in an HTTP header"
            ))
        })?;
        headers.insert(header_name, header_value);
    }
    Ok((headers, helper_values))
}

fn split_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `<tag>, <caller values…>` without duplicates (§1.5: appended, never replaced).
pub(crate) fn helper_header_value(
    helper: Helper,
    caller_values: &[String],
) -> Result<Option<HeaderValue>, ApiError> {
    let mut values: Vec<&str> = Vec::new();
    for value in helper
        .tag()
        .into_iter()
        .chain(caller_values.iter().map(String::as_str))
    {
        if !values.contains(&value) {
            values.push(value);
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&values.join(", "))
        .map(Some)
        .map_err(|_| ApiError::Config("x-stainless-helper value is not a valid header".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_base_url_and_custom_headers_from_env() {
        let vars = |name: &str| match name {
            "ANTHROPIC_BASE_URL" => Some(" http://127.0.0.1:8080 ".to_owned()),
            "ANTHROPIC_CUSTOM_HEADERS" => Some("X-One: 1\n\nx-two:two: parts\n".to_owned()),
            _ => None,
        };
        let config = ClientConfig::from_vars(vars).unwrap();
        assert_eq!(config.base_url, "http://127.0.0.1:8080");
        assert_eq!(
            config.extra_headers,
            vec![
                ("X-One".to_owned(), "1".to_owned()),
                ("x-two".to_owned(), "two: parts".to_owned())
            ]
        );
        let defaults = ClientConfig::from_vars(|_| None).unwrap();
        assert_eq!(defaults.base_url, "https://api.anthropic.com");
        assert_eq!(defaults.max_retries, 2);
        assert_eq!(defaults.connect_timeout, Duration::from_secs(5));
        assert_eq!(defaults.request_timeout, Duration::from_secs(600));
        let bad = parse_custom_headers("no colon here");
        assert!(matches!(bad, Err(ApiError::Config(m)) if m.contains("no colon here")));
    }

    #[test]
    fn helper_values_append_without_duplicates() {
        let caller = vec!["custom".to_owned(), "session-tool-runner".to_owned()];
        let value = helper_header_value(Helper::SessionToolRunner, &caller).unwrap();
        assert_eq!(value.unwrap(), "session-tool-runner, custom");
        assert!(helper_header_value(Helper::None, &[]).unwrap().is_none());
        let (headers, helpers) = validate_extra_headers(&[
            ("Authorization".into(), "Bearer parent".into()),
            ("X-API-KEY".into(), "sk".into()),
            ("X-Stainless-Helper".into(), "a, b".into()),
            ("anthropic-workspace-id".into(), "wrk_1".into()),
        ])
        .unwrap();
        assert_eq!(helpers, vec!["a", "b"]);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["anthropic-workspace-id"], "wrk_1");
    }
}
