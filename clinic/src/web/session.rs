//! Clinicians' sign-in to the dashboard: Argon2id passwords, session
//! cookies, CSRF tokens and the extractors every page and form goes through.
//!
//! - A password is stored only as its Argon2id hash (PHC string, the
//!   `argon2` crate's defaults: 19 MiB, 2 passes, 1 lane). Checks run on a
//!   blocking thread, at most two at once ([`crate::state::AppState::password_checks`]);
//!   an unknown login is checked against a dummy hash, so its answer takes
//!   as long as a wrong password's.
//! - Failed sign-ins count against the peer's address in the same limiter
//!   as bad tokens ([`crate::auth`]): past 20 a minute, `429`.
//! - A session is a random 256-bit cookie (`katcore_session`, `HttpOnly`,
//!   `SameSite=Strict`, `Path=/dashboard`, `Secure` when the server is
//!   reached over TLS) whose SHA-256 names a `web_sessions` row. It ends
//!   after [`SESSION_IDLE`] without a request, [`SESSION_LIFETIME`] after
//!   sign-in, at sign-out, when the password changes or when the clinician
//!   is revoked.
//! - Every form carries the session's CSRF token; [`Posted`] refuses a form
//!   without it (`403`) before its handler runs. The sign-in form, which has
//!   no session yet, carries a token that must match a short-lived
//!   `katcore_signin` cookie (double submit).

use std::sync::LazyLock;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::{client_ip, hash_secret, ClinicianAuth};
use crate::error::ApiError;
use crate::extract::bytes_rejection;
use crate::state::AppState;
use crate::storage::WebSession;

use super::WebError;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "katcore_session";
/// The sign-in form's cookie (its CSRF token before there is a session).
pub(crate) const SIGNIN_COOKIE: &str = "katcore_signin";
/// A session ends after this long without a request.
pub(crate) const SESSION_IDLE: chrono::Duration = chrono::Duration::minutes(30);
/// A session ends this long after sign-in, whatever happens (a long shift).
pub(crate) const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(12);
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (bounds the hashing work of one request).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// How long a sign-in waits for a turn to check its password.
const PASSWORD_TURN_WAIT: Duration = Duration::from_secs(10);

/// Why a password or login cannot be set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("the password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    Length,
    /// The login is empty, too long, or has spaces or control characters.
    #[error("the login must be 1 to 100 characters without spaces or control characters")]
    Login,
    /// Hashing failed (it does not, short of memory).
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// A login as stored: trimmed and in lower case.
///
/// # Errors
/// [`PasswordError::Login`] for an empty or over-long login, or one with
/// spaces or control characters.
pub fn normalize_login(login: &str) -> Result<String, PasswordError> {
    let login = login.trim().to_lowercase();
    if login.is_empty() || login.chars().count() > 100 || login.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(PasswordError::Login);
    }
    Ok(login)
}

/// The Argon2id hash (PHC string) of `password`, with a fresh random salt.
///
/// # Errors
/// [`PasswordError::Length`] outside [`MIN_PASSWORD_CHARS`]..=[`MAX_PASSWORD_CHARS`].
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(PasswordError::Length);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A hash no password matches, checked for unknown logins so that they take
/// as long as known ones.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("no password matches this one").unwrap_or_default());

/// Whether `password` matches the PHC string `hash` (`false` for a hash
/// that does not parse, and for an over-long password).
fn password_matches(password: &str, hash: &str) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// The value of cookie `name` in a request's headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, on `path`, for
/// `max_age` seconds (0 deletes it), `Secure` when the server says so.
fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("katcore_invalid=; Max-Age=0"))
}

/// A random 256-bit secret, base64url.
fn new_secret() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether two tokens are equal, compared through their SHA-256 (so the
/// comparison's time says nothing about the expected token).
fn same_token(a: &str, b: &str) -> bool {
    hash_secret(a) == hash_secret(b)
}

/// `303 See Other` to `location`.
pub(crate) fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/dashboard"));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// A signed-in clinician, from the session cookie. Without a live session,
/// the request is sent to the sign-in page.
#[derive(Clone)]
pub(crate) struct SignedIn {
    /// Who, as the API's clinician extractor would name them.
    pub(crate) clinician: ClinicianAuth,
    /// The session's CSRF token, for the page's forms.
    pub(crate) csrf: String,
    /// SHA-256 of the session cookie.
    id_hash: crate::storage::SecretHash,
}

/// Names the clinician only: never the session's secrets.
impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn").field("clinician_id", &self.clinician.clinician_id).finish_non_exhaustive()
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(see_other("/dashboard/signin"));
        };
        let id_hash = hash_secret(value);
        let found = state.db(move |s| s.web_session(&id_hash, Utc::now(), SESSION_IDLE)).await;
        match found {
            Ok(Some((session, clinician))) => Ok(SignedIn {
                clinician: ClinicianAuth {
                    clinician_id: clinician.id,
                    clinic_id: clinician.clinic_id,
                    display_name: clinician.display_name,
                },
                csrf: session.csrf_token,
                id_hash,
            }),
            Ok(None) => Err(see_other("/dashboard/signin")),
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

/// The CSRF token every dashboard form carries (other fields ignored).
#[derive(Deserialize)]
struct CsrfField {
    /// The token.
    csrf: String,
}

/// A form posted by a signed-in clinician, its CSRF token checked before
/// its fields are even read (`403` without the session's token; `400` for
/// a field that is missing or does not read).
#[derive(Debug)]
pub(crate) struct Posted<T> {
    /// Who posted it.
    pub(crate) signed_in: SignedIn,
    /// The form's fields.
    pub(crate) form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let signed_in = match SignedIn::from_request_parts(&mut parts, state).await {
            Ok(signed_in) => signed_in,
            // Signed out while the form was open (the session expired):
            // nothing is saved, and the sign-in page says so and hands back
            // the text that was typed, so that it is not lost without a word.
            Err(rejection) if rejection.status() == StatusCode::SEE_OTHER => {
                // Only a form of this dashboard gets its text back: another
                // site must not put words of its own on this origin's page.
                let same_origin = same_origin(&parts.headers);
                let body = Bytes::from_request(Request::from_parts(parts, body), state).await.unwrap_or_default();
                let kept = serde_urlencoded::from_bytes::<KeptText>(&body).ok().and_then(|form| form.text);
                let kept = kept.filter(|text| same_origin && !text.trim().is_empty());
                return Err(signin_response(state, StatusCode::UNAUTHORIZED, Some(EXPIRED_UNSAVED), kept));
            }
            Err(rejection) => return Err(rejection),
        };
        let request = Request::from_parts(parts, body);
        let body = match Bytes::from_request(request, state).await {
            Ok(body) => body,
            Err(rejection) => {
                return Err(WebError::from(bytes_rejection(&rejection, super::MAX_FORM_BODY)).into_response())
            }
        };
        let token = serde_urlencoded::from_bytes::<CsrfField>(&body).map(|field| field.csrf).unwrap_or_default();
        if !same_token(&token, &signed_in.csrf) {
            return Err(csrf_refused());
        }
        let form = serde_urlencoded::from_bytes::<T>(&body)
            .map_err(|e| super::bad_field(format!("The form does not read: {e}.")).into_response())?;
        Ok(Posted { signed_in, form })
    }
}

/// Whether a request says it comes from a page of this origin: its
/// `Origin` names the host it was sent to (browsers send `Origin` with
/// every form `POST`).
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|value| value.to_str().ok());
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, authority)| authority == host),
        _ => false,
    }
}

/// What the sign-in page says to a form posted after its sign-in expired.
const EXPIRED_UNSAVED: &str = "Your sign-in had expired, so nothing was saved. Sign in, then submit it again.";

/// The free text of a form posted after its sign-in expired, if it had one.
#[derive(Deserialize)]
struct KeptText {
    /// A note's text.
    text: Option<String>,
}

/// `403` for a form without its session's token.
fn csrf_refused() -> Response {
    WebError::from(ApiError::forbidden(
        "this form has expired or did not come from the dashboard: go back, reload the page and try again",
    ))
    .into_response()
}

/// The sign-in page's form (no `Debug`: it holds a password).
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    /// Matches the `katcore_signin` cookie.
    csrf: String,
    /// The clinician's login.
    login: String,
    /// Their password.
    password: String,
}

/// `GET /dashboard/signin`: the form, with a fresh sign-in token in a
/// cookie and in the form.
pub(crate) async fn signin_page(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    signin_response(&state, StatusCode::OK, None, None)
}

/// The sign-in page with `status`, an optional message, and text handed
/// back from a form that could not be saved.
fn signin_response(
    state: &AppState,
    status: StatusCode,
    message: Option<&'static str>,
    kept: Option<String>,
) -> Response {
    let token = new_secret();
    let page = SignInPage { csrf: token.clone(), message, kept };
    let mut response = (status, super::render(&page)).into_response();
    response.headers_mut().append(SET_COOKIE, set_cookie(state, SIGNIN_COOKIE, &token, "/dashboard/signin", 3600));
    response
}

/// `POST /dashboard/signin`.
pub(crate) async fn sign_in(axum::extract::State(state): axum::extract::State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let peer = client_ip(&parts, state.trusted_proxies());
    let expected = cookie(&parts.headers, SIGNIN_COOKIE).map(str::to_owned);
    let form = match Form::<SignInForm>::from_request(Request::from_parts(parts, body), &state).await {
        Ok(Form(form)) => form,
        Err(_) => {
            return signin_response(&state, StatusCode::BAD_REQUEST, Some("Enter your login and password."), None)
        }
    };
    if !expected.is_some_and(|expected| same_token(&expected, &form.csrf)) {
        return signin_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("The page had expired. Please sign in again."),
            None,
        );
    }
    if let Err(limited) = state.limiter().check(peer) {
        return WebError::from(limited).into_response();
    }
    let Ok(Ok(_turn)) = tokio::time::timeout(PASSWORD_TURN_WAIT, state.password_checks().acquire()).await else {
        return WebError::from(ApiError::busy(5)).into_response();
    };
    let login = normalize_login(&form.login).unwrap_or_default();
    let found = match state.db(move |s| s.clinician_by_login(&login)).await {
        Ok(found) => found.filter(|found| !found.clinician.revoked),
        Err(e) => return WebError::from(e).into_response(),
    };
    let password = form.password;
    let (clinician, matches) = match tokio::task::spawn_blocking(move || match found {
        Some(found) => {
            let matches = password_matches(&password, &found.password_hash);
            (Some(found.clinician), matches)
        }
        None => {
            // The same work as a real check, and never a match.
            std::hint::black_box(password_matches(&password, &DUMMY_HASH));
            (None, false)
        }
    })
    .await
    {
        Ok(answer) => answer,
        Err(e) => return WebError::from(ApiError::from(e)).into_response(),
    };
    let Some(clinician) = clinician.filter(|_| matches) else {
        state.failed_attempt(peer).await;
        tracing::info!("dashboard sign-in refused");
        return signin_response(&state, StatusCode::UNAUTHORIZED, Some("That login and password do not match."), None);
    };
    let value = new_secret();
    let now = Utc::now();
    let session = WebSession {
        id_hash: hash_secret(&value),
        clinician_id: clinician.id.clone(),
        csrf_token: new_secret(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + SESSION_LIFETIME,
    };
    if let Err(e) = state.db(move |s| s.insert_web_session(&session)).await {
        return WebError::from(e).into_response();
    }
    tracing::info!(clinician_id = %clinician.id, "clinician signed in to the dashboard");
    let mut response = see_other("/dashboard");
    let headers = response.headers_mut();
    headers
        .append(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, &value, "/dashboard", SESSION_LIFETIME.num_seconds()));
    headers.append(SET_COOKIE, set_cookie(&state, SIGNIN_COOKIE, "", "/dashboard/signin", 0));
    response
}

/// No fields besides the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct NoFields {}

/// `POST /dashboard/signout`: ends the session.
pub(crate) async fn sign_out(
    axum::extract::State(state): axum::extract::State<AppState>,
    posted: Posted<NoFields>,
) -> Response {
    let id_hash = posted.signed_in.id_hash;
    if let Err(e) = state.db(move |s| s.delete_web_session(&id_hash)).await {
        return WebError::from(e).into_response();
    }
    let mut response = see_other("/dashboard/signin");
    response.headers_mut().append(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", "/dashboard", 0));
    response
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    /// The sign-in token, also in the `katcore_signin` cookie.
    csrf: String,
    /// Why the last attempt failed, if it did.
    message: Option<&'static str>,
    /// Text a form posted after its sign-in expired carried, handed back
    /// to copy (nothing of it was saved).
    kept: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_and_checked() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse batterY", &hash));
        assert!(!password_matches("correct horse battery", "not a hash"));
        assert_eq!(hash_password("short"), Err(PasswordError::Length));
        assert_eq!(hash_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)), Err(PasswordError::Length));
        assert_ne!(hash_password("correct horse battery").unwrap(), hash, "a fresh salt each time");
    }

    #[test]
    fn logins_are_trimmed_lower_case_and_plain() {
        assert_eq!(normalize_login("  Rivera ").unwrap(), "rivera");
        assert_eq!(normalize_login("dr rivera"), Err(PasswordError::Login));
        assert_eq!(normalize_login(""), Err(PasswordError::Login));
        assert_eq!(normalize_login("a\u{7}b"), Err(PasswordError::Login));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("other=1; katcore_session_x=2; katcore_session=abc"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, SIGNIN_COOKIE), None);
    }
}
