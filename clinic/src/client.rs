//! A typed client for the clinician API, over HTTP.
//!
//! What a clinic's web app, `katctl demo` and the end-to-end tests use to
//! create clients, issue enrollment codes, schedule sessions, read records
//! and handle alerts. Every call returns the HTTP status with the JSON body,
//! or a [`ClinicianClientError`] naming what went wrong.

use serde_json::{json, Value};

/// Why a clinician API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClinicianClientError {
    /// The server could not be reached.
    #[error("the clinic server could not be reached: {0}")]
    Network(String),
    /// The server answered with an error status.
    #[error("{path}: the clinic server answered {status}: {message}")]
    Status {
        /// The request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// A field the answer should have had was missing.
    #[error("{path}: the answer lacks {field}")]
    Missing {
        /// The request path.
        path: String,
        /// The missing field.
        field: &'static str,
    },
}

type Result<T> = std::result::Result<T, ClinicianClientError>;

/// The clinician API of one server, with one clinician's token.
#[derive(Clone, Debug)]
pub struct ClinicianClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ClinicianClient {
    /// A client for the server at `base` with a clinician `token`.
    pub fn new(base: &str, token: &str) -> Self {
        ClinicianClient {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    ///
    /// # Errors
    /// [`ClinicianClientError::Network`] when the server cannot be reached.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| ClinicianClientError::Network(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let (status, value) = self.call(method, path, body).await?;
        if !(200..300).contains(&status) {
            let message = value["message"].as_str().unwrap_or_default().to_owned();
            return Err(ClinicianClientError::Status { path: path.to_owned(), status, message });
        }
        Ok(value)
    }

    fn field(value: &Value, path: &str, field: &'static str) -> Result<String> {
        value[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClinicianClientError::Missing { path: path.to_owned(), field })
    }

    /// Creates a client; returns its id.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn create_client(&self, label: &str) -> Result<String> {
        let path = "/v1/clients";
        let v = self.ok(reqwest::Method::POST, path, Some(json!({"label": label}))).await?;
        Self::field(&v, path, "client_id")
    }

    /// A one-time enrollment code for a client.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn enrollment_code(&self, client_id: &str) -> Result<String> {
        let path = format!("/v1/clients/{client_id}/enrollment-codes");
        let v = self.ok(reqwest::Method::POST, &path, None).await?;
        Self::field(&v, &path, "code")
    }

    /// Schedules a session; returns its id.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn schedule_session(&self, client_id: &str, start: &str, time_zone: &str) -> Result<String> {
        let path = format!("/v1/clients/{client_id}/sessions");
        let v = self.ok(reqwest::Method::POST, &path, Some(json!({"start": start, "time_zone": time_zone}))).await?;
        Self::field(&v, &path, "session_id")
    }

    /// Moves a session.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn move_session(&self, client_id: &str, session_id: &str, start: &str) -> Result<()> {
        let path = format!("/v1/clients/{client_id}/sessions/{session_id}");
        self.ok(reqwest::Method::PUT, &path, Some(json!({"start": start}))).await.map(|_| ())
    }

    /// Adds a note to a client's record.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn add_note(&self, client_id: &str, text: &str) -> Result<()> {
        let path = format!("/v1/clients/{client_id}/notes");
        self.ok(reqwest::Method::POST, &path, Some(json!({"text": text}))).await.map(|_| ())
    }

    /// The client's record as JSON.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn record(&self, client_id: &str) -> Result<Value> {
        self.ok(reqwest::Method::GET, &format!("/v1/clients/{client_id}/record"), None).await
    }

    /// The clinic's clients with their next session and last sync.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn clients(&self) -> Result<Vec<Value>> {
        Ok(self.ok(reqwest::Method::GET, "/v1/clients", None).await?.as_array().cloned().unwrap_or_default())
    }

    /// Alerts, `open` or `all`: open ones first, newest first.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn alerts(&self, status: &str) -> Result<Vec<Value>> {
        let v = self.ok(reqwest::Method::GET, &format!("/v1/alerts?status={status}"), None).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// A client's devices.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn devices(&self, client_id: &str) -> Result<Vec<Value>> {
        let v = self.ok(reqwest::Method::GET, &format!("/v1/clients/{client_id}/devices"), None).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Revokes a device.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn revoke_device(&self, device_id: &str) -> Result<()> {
        self.ok(reqwest::Method::POST, &format!("/v1/devices/{device_id}/revoke"), None).await.map(|_| ())
    }

    /// Publishes a signed pack envelope (`katctl pack sign`, or
    /// [`katcore::pack::sign_pack`] with the clinic's private key, offline);
    /// the server verifies it against the clinic's public key.
    ///
    /// # Errors
    /// A [`ClinicianClientError`].
    pub async fn publish_pack(&self, pack: &Value) -> Result<Value> {
        self.ok(reqwest::Method::PUT, "/v1/pack", Some(pack.clone())).await
    }
}
