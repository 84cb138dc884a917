//! The HTTP client: scoped credentials, request headers (§1.4–1.6) and the retrying
//! request core (§2.2). Settings live in `config.rs`, endpoint methods in `endpoints.rs`.

use crate::config::{
    helper_header_value, parse_base_url, validate_extra_headers, ClientConfig, Helper,
    HELPER_HEADER,
};
use crate::error::ApiError;
use crate::retry::{retry_delay, should_retry_status};
use crate::types::{ANTHROPIC_VERSION, BETA_MANAGED_AGENTS};
use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE,
};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::SystemTime;
use url::Url;

const WORKER_ID_HEADER: &str = "anthropic-worker-id";
pub(crate) const JSON: &str = "application/json";
pub(crate) const BINARY: &str = "application/binary";

/// State shared by a client and all its scoped copies (one connection pool).
struct Shared {
    http: reqwest::Client,
    config: ClientConfig,
    /// `base_url` without a trailing slash.
    base: Url,
    /// Validated caller headers minus credentials and the helper header.
    extra: HeaderMap,
    /// Caller-supplied `x-stainless-helper` values, in order.
    extra_helper_values: Vec<String>,
}

/// A control-plane client bound to one Bearer credential and helper tag.
///
/// Cheap to clone; [`Client::scoped`] derives clients for other credentials that share
/// the same connection pool. The credential is never logged (`Debug` hides it).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    authorization: HeaderValue,
    helper: Helper,
    helper_value: Option<HeaderValue>,
    worker_id: Option<Arc<str>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.shared.base.as_str())
            .field("helper", &self.helper)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

/// Description of one HTTP call, rebuilt into a request on every attempt.
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    /// Send `anthropic-beta: managed-agents-2026-04-01`.
    pub beta: bool,
    pub accept: &'static str,
    /// JSON body for POSTs (`Some(empty)` gives `Content-Length: 0`).
    pub body: Option<Bytes>,
    /// Send `Anthropic-Worker-ID` (poll only).
    pub worker_id: bool,
}

/// One failed attempt: the error plus what the retry policy needs.
struct Failure {
    error: ApiError,
    retryable: bool,
    headers: Option<HeaderMap>,
}

impl Failure {
    fn transport(err: &reqwest::Error) -> Failure {
        // Builder errors (bad URL/header) are ours, not the network's.
        if err.is_builder() {
            return Failure {
                error: ApiError::Config(format!("could not build the request: {err}")),
                retryable: false,
                headers: None,
            };
        }
        Failure {
            error: ApiError::transport(err),
            retryable: true,
            headers: None,
        }
    }
}

impl Client {
    /// Builds a client with its own connection pool.
    ///
    /// Fails with [`ApiError::Config`] for an empty credential, a base URL that is not
    /// `http(s)://…`, or extra headers that are not valid HTTP headers.
    pub fn new(config: ClientConfig, credential: &str, helper: Helper) -> Result<Client, ApiError> {
        let base = parse_base_url(&config.base_url)?;
        let (extra, extra_helper_values) = validate_extra_headers(&config.extra_headers)?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // Idle timeout between reads; buffered calls add a total timeout per request.
            .read_timeout(config.request_timeout)
            .user_agent(concat!("sandkeep/", env!("CARGO_PKG_VERSION")))
            // Like the SDK: a redirect is an answer, and must not carry the Bearer elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ApiError::Config(format!("could not create the HTTP client: {err}")))?;
        let shared = Arc::new(Shared {
            http,
            config,
            base,
            extra,
            extra_helper_values,
        });
        Client::with_shared(shared, credential, helper, None)
    }

    /// A client for another credential/helper sharing this client's pool and settings.
    /// The worker id (if any) is carried over.
    pub fn scoped(&self, credential: &str, helper: Helper) -> Result<Client, ApiError> {
        Client::with_shared(
            self.shared.clone(),
            credential,
            helper,
            self.worker_id.clone(),
        )
    }

    /// Sets the id sent as `Anthropic-Worker-ID` on polls (§3.4).
    pub fn with_worker_id(mut self, id: impl Into<String>) -> Client {
        self.worker_id = Some(Arc::from(id.into()));
        self
    }

    pub fn helper(&self) -> Helper {
        self.helper
    }

    pub fn worker_id(&self) -> Option<&str> {
        self.worker_id.as_deref()
    }

    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    fn with_shared(
        shared: Arc<Shared>,
        credential: &str,
        helper: Helper,
        worker_id: Option<Arc<str>>,
    ) -> Result<Client, ApiError> {
        if credential.trim().is_empty() {
            return Err(ApiError::Config(
                "the credential is empty; pass an environment key, sessions token or API key"
                    .to_owned(),
            ));
        }
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {credential}")).map_err(|_| {
                ApiError::Config(
                    "the credential contains characters that cannot be sent in an HTTP header"
                        .to_owned(),
                )
            })?;
        authorization.set_sensitive(true);
        let helper_value = helper_header_value(helper, &shared.extra_helper_values)?;
        Ok(Client {
            shared,
            authorization,
            helper,
            helper_value,
            worker_id,
        })
    }

    /// URL from path segments (each percent-encoded) and query pairs.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.shared.base.clone();
        // `parse_base_url` guarantees an http(s) URL, which can always take segments.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    /// URL from a caller-written `/path?query` (generic operator calls).
    pub(crate) fn raw_url(&self, path_and_query: &str) -> Result<Url, ApiError> {
        if !path_and_query.starts_with('/') {
            return Err(ApiError::Config(format!(
                "request path `{path_and_query}` must start with `/`"
            )));
        }
        let text = format!(
            "{}{}",
            self.shared.base.as_str().trim_end_matches('/'),
            path_and_query
        );
        Url::parse(&text).map_err(|err| {
            ApiError::Config(format!(
                "request path `{path_and_query}` is not valid: {err}"
            ))
        })
    }

    /// Runs a buffered call with retries; returns status and body of the 2xx response.
    pub(crate) async fn execute(&self, call: &Call) -> Result<(u16, Bytes), ApiError> {
        self.with_retries(call, || async {
            let response = self.request(call, true)?.send().await;
            let response = response.map_err(|e| Failure::transport(&e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| Failure::transport(&e))?;
            if status.is_success() {
                Ok((status.as_u16(), body))
            } else {
                Err(status_failure(status, headers, &body))
            }
        })
        .await
    }

    /// Runs a call with retries up to the response head; the body is left to the caller
    /// and has no total timeout (only the idle read timeout).
    pub(crate) async fn open(&self, call: &Call) -> Result<reqwest::Response, ApiError> {
        self.with_retries(call, || async {
            let response = self.request(call, false)?.send().await;
            let response = response.map_err(|e| Failure::transport(&e))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            Err(status_failure(status, headers, &body))
        })
        .await
    }

    async fn with_retries<T, F, Fut>(&self, call: &Call, mut attempt: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let max_retries = self.shared.config.max_retries;
        let mut retries_done = 0;
        loop {
            let failure = match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if !failure.retryable || retries_done >= max_retries {
                return Err(failure.error);
            }
            let delay = retry_delay(
                retries_done,
                failure.headers.as_ref(),
                SystemTime::now(),
                rand::random::<f64>(),
            );
            retries_done += 1;
            tracing::debug!(
                method = %call.method,
                path = call.url.path(),
                retry = retries_done,
                max_retries,
                delay_ms = delay.as_millis() as u64,
                error = %failure.error,
                "retrying control-plane request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Assembles headers in precedence order: protocol defaults, caller extras, then the
    /// credential and helper tag, which callers cannot override (§1.5).
    fn request(
        &self,
        call: &Call,
        total_timeout: bool,
    ) -> Result<reqwest::RequestBuilder, Failure> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(call.accept));
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        if call.beta {
            headers.insert(
                "anthropic-beta",
                HeaderValue::from_static(BETA_MANAGED_AGENTS),
            );
        }
        if let Some(body) = &call.body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
            if body.is_empty() {
                // hyper omits the header for an empty body; the protocol documents
                // `Content-Length: 0` for ack and heartbeat (§3.4).
                headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
        }
        for (name, value) in &self.shared.extra {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(AUTHORIZATION, self.authorization.clone());
        if let Some(helper) = &self.helper_value {
            headers.insert(HELPER_HEADER, helper.clone());
        }
        if call.worker_id {
            if let Some(id) = &self.worker_id {
                let value = HeaderValue::from_str(id).map_err(|_| Failure {
                    error: ApiError::Config(format!(
                        "worker id `{id}` contains characters that cannot be sent in an HTTP header"
                    )),
                    retryable: false,
                    headers: None,
                })?;
                headers.insert(WORKER_ID_HEADER, value);
            }
        }
        let mut builder = self
            .shared
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(headers);
        if let Some(body) = &call.body {
            builder = builder.body(body.clone());
        }
        if total_timeout {
            builder = builder.timeout(self.shared.config.request_timeout);
        }
        Ok(builder)
    }
}

fn status_failure(status: StatusCode, headers: HeaderMap, body: &[u8]) -> Failure {
    let request_id = headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Failure {
        error: ApiError::from_response(status.as_u16(), request_id, body),
        retryable: should_retry_status(status.as_u16(), &headers),
        headers: Some(headers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(config: ClientConfig) -> Client {
        Client::new(config, "key", Helper::Worker).unwrap()
    }

    #[test]
    fn rejects_bad_configuration() {
        let empty = Client::new(ClientConfig::default(), "  ", Helper::Worker);
        assert!(matches!(empty, Err(ApiError::Config(m)) if m.contains("credential is empty")));
        let newline = Client::new(ClientConfig::default(), "a\nb", Helper::Worker);
        assert!(matches!(newline, Err(ApiError::Config(_))));
        for base in ["ftp://x", "not a url", "http://h/?q=1"] {
            let config = ClientConfig {
                base_url: base.into(),
                ..ClientConfig::default()
            };
            assert!(
                matches!(
                    Client::new(config, "k", Helper::None),
                    Err(ApiError::Config(_))
                ),
                "{base}"
            );
        }
        let bad_header = ClientConfig {
            extra_headers: vec![("bad name".into(), "v".into())],
            ..ClientConfig::default()
        };
        assert!(matches!(
            Client::new(bad_header, "k", Helper::None),
            Err(ApiError::Config(_))
        ));
        let base = client(ClientConfig::default());
        assert!(matches!(
            base.scoped("", Helper::Worker),
            Err(ApiError::Config(_))
        ));
    }

    #[test]
    fn urls_are_encoded_and_keep_prefixes() {
        let c = client(ClientConfig {
            base_url: "http://127.0.0.1:9/prefix/".into(),
            ..ClientConfig::default()
        });
        let url = c.url(
            &["v1", "environments", "env 1/x", "work"],
            &[("expected_last_heartbeat", "2026-01-01T00:00:01Z".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/v1/environments/env%201%2Fx/work?expected_last_heartbeat=2026-01-01T00%3A00%3A01Z"
        );
        assert_eq!(
            c.raw_url("/v1/agents?limit=2").unwrap().as_str(),
            "http://127.0.0.1:9/prefix/v1/agents?limit=2"
        );
        assert!(matches!(c.raw_url("v1/agents"), Err(ApiError::Config(_))));
        let root = client(ClientConfig::default());
        assert_eq!(
            root.url(&["v1", "sessions", "s"], &[]).as_str(),
            "https://api.anthropic.com/v1/sessions/s"
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let config = ClientConfig {
            extra_headers: vec![("x-custom-token".into(), "hdr-secret".into())],
            ..ClientConfig::default()
        };
        let c = Client::new(config.clone(), "sk-secret-value", Helper::Worker).unwrap();
        let text = format!("{c:?} {config:?}");
        assert!(!text.contains("sk-secret-value"), "{text}");
        assert!(!text.contains("hdr-secret"), "{text}");
        assert!(text.contains("x-custom-token"), "{text}");
    }

    #[test]
    fn client_and_stream_can_cross_tasks() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send + Unpin>() {}
        send_sync::<Client>();
        send_sync::<ApiError>();
        send::<crate::EventStream>();
    }
}
