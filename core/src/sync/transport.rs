//! How the sync client reaches the clinic: a small HTTP transport trait.
//!
//! Sync needs three requests (enroll, sync, fetch the pack), each a whole
//! body in and a whole body out. [`Transport`] is that and nothing more, so
//! the HTTP stack is the embedder's choice:
//!
//! - Rust programs (`katctl`, the clinic's tests, the load generator) use
//!   `reqwest::Client`, which implements it with the crate feature `reqwest`
//!   (on by default): rustls with the bundled web PKI roots, see
//!   `sync::http_client`.
//! - The mobile library hands requests to the phone's own HTTP stack
//!   (`HttpURLConnection` on Android, `URLSession` on iOS) through a foreign
//!   trait in the bindings. The platform then applies the device's proxy,
//!   VPN and managed certificate settings, and the library carries no second
//!   TLS stack.
//!
//! Transports report only whether the request got an answer. Every HTTP
//! status, including errors, comes back as an [`HttpResponse`]; the sync
//! client decides what a status means.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: what [`Transport::send`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The HTTP methods sync uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET` (the pack).
    Get,
    /// `POST` (enrollment, sync).
    Post,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One request, complete with its body.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// Request headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body; empty for `GET`.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request without headers or body.
    pub fn new(method: Method, url: String) -> Self {
        HttpRequest { method, url, headers: Vec::new(), body: Vec::new() }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

// Requests carry the device token and health data: neither is ever printed.
impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// One response, complete with its body, whatever its status.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Response headers, in any letter case (see [`HttpResponse::header`]).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name`, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The request got no answer: no network, DNS, refused or reset connection,
/// timeout, or a certificate the platform does not trust.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TransportError {
    /// What failed, without the request's content.
    pub reason: String,
}

/// Sends HTTP requests for the sync client.
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request` and returns the server's answer, whatever its status.
    ///
    /// # Errors
    /// [`TransportError`] when no answer arrived.
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;
}

impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        (**self).send(request)
    }
}

#[cfg(feature = "reqwest")]
impl Transport for reqwest::Client {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        // reqwest's messages name the failure (and the URL, removed here), never the body.
        fn failed(error: reqwest::Error) -> TransportError {
            TransportError { reason: error.without_url().to_string() }
        }
        Box::pin(async move {
            let method = match request.method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
            };
            let mut builder = self.request(method, &request.url);
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            if request.method == Method::Post {
                builder = builder.body(request.body);
            }
            let response = builder.send().await.map_err(failed)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
                .collect();
            let body = response.bytes().await.map_err(failed)?.to_vec();
            Ok(HttpResponse { status, headers, body })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_in_any_case() {
        let response = HttpResponse {
            status: 200,
            headers: vec![("ETag".into(), "\"v2\"".into()), ("katcore-pack-etag".into(), "\"p\"".into())],
            body: Vec::new(),
        };
        assert_eq!(response.header("etag"), Some("\"v2\""));
        assert_eq!(response.header("KATCORE-PACK-ETAG"), Some("\"p\""));
        assert_eq!(response.header("retry-after"), None);
    }

    #[test]
    fn debug_output_leaves_out_headers_and_bodies() {
        let request = HttpRequest::new(Method::Post, "https://clinic.example/v1/sync".into())
            .header("Authorization", "Bearer kd_secret")
            .body(b"journal text".to_vec());
        assert_eq!(request.headers[0].0, "authorization");
        let printed = format!("{request:?}");
        assert!(!printed.contains("kd_secret") && !printed.contains("journal"), "{printed}");
        let response = HttpResponse { status: 200, headers: Vec::new(), body: b"record bytes".to_vec() };
        assert!(!format!("{response:?}").contains("record"));
    }
}
