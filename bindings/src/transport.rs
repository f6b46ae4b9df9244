//! `HttpTransport`: how sync reaches the clinic, through the app's HTTP stack.
//!
//! The library sends no network traffic of its own. Enrollment and sync hand
//! each request to an [`HttpTransport`] the app passes to `CareStore.open`:
//! a Kotlin class over `HttpURLConnection` (shipped in `android/`, run by the
//! Kotlin suite here) or a Swift one over `URLSession` (shipped in `ios/`).
//! The platform does TLS with the device's trust store, proxy, VPN and
//! managed-device settings, and the library stays small: it carries no TLS
//! stack, no certificate roots and no async runtime.
//!
//! A transport sends one request and returns the answer, whatever its status
//! (a 500 is an answer). It throws only when no answer arrived; it never puts
//! the request's URL, headers or body in the error.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use katcore::sync::transport::{
    BoxFuture, HttpRequest as CoreRequest, HttpResponse as CoreResponse, Transport, TransportError,
};

/// One request to send, complete with its body.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Headers to send, names in lower case. `authorization` carries the device's
    /// token: never log it.
    pub headers: HashMap<String, String>,
    /// The body (empty for `GET`). Carries health data: never log it.
    pub body: Vec<u8>,
}

/// The server's answer, whatever its status.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Response headers, any letter case; several values of one header joined by `", "`.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request got no answer. Kotlin: `HttpTransportException`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum HttpTransportError {
    /// No answer: no network, DNS, a refused or broken connection, a timeout, or a
    /// server certificate the platform does not trust. Sync keeps everything and retries.
    #[error("the clinic server could not be reached: {reason}")]
    Unreachable {
        /// What failed, in a few words, without the request's URL, headers or body.
        reason: String,
    },
}

// The app's transport threw something other than `HttpTransportError`. Its text
// (a stack trace, perhaps the URL) is dropped: error strings stay free of request data.
impl From<uniffi::UnexpectedUniFFICallbackError> for HttpTransportError {
    fn from(_: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HttpTransportError::Unreachable { reason: "the app's HTTP transport threw an unexpected exception".into() }
    }
}

/// Sends sync's HTTP requests; implemented by the app (Kotlin interface, Swift protocol).
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait HttpTransport: Send + Sync {
    /// Sends `request` and returns the answer, whatever its HTTP status.
    ///
    /// # Errors
    /// `Unreachable` when no answer arrived.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpTransportError>;
}

/// The app's transport, as the core's [`Transport`].
#[derive(Clone)]
pub(crate) struct ForeignTransport(pub(crate) Arc<dyn HttpTransport>);

impl fmt::Debug for ForeignTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForeignTransport")
    }
}

impl Transport for ForeignTransport {
    fn send(&self, request: CoreRequest) -> BoxFuture<'_, Result<CoreResponse, TransportError>> {
        let request = HttpRequest {
            method: request.method.as_str().to_owned(),
            url: request.url,
            headers: request.headers.into_iter().collect(),
            body: request.body,
        };
        Box::pin(async move {
            match self.0.send(request).await {
                Ok(response) => Ok(CoreResponse {
                    status: response.status,
                    headers: response.headers.into_iter().collect(),
                    body: response.body,
                }),
                Err(HttpTransportError::Unreachable { reason }) => Err(TransportError { reason }),
            }
        })
    }
}
