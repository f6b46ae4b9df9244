//! The OpenAPI description of the whole API, served at `GET /openapi.json`.

use std::sync::OnceLock;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "katcore clinic server",
        description = "Enrollment, device sync (docs/sync-protocol.md), the clinician API, alerts and packs. \
                       Errors are `{\"error\": \"<code>\", \"message\": \"...\"}`."
    ),
    paths(
        crate::server::healthz,
        crate::metrics::metrics,
        openapi_json,
        crate::enrollment::enroll,
        crate::sync::sync,
        crate::packs::current_pack,
        crate::packs::publish_pack,
        crate::clinician::create_client,
        crate::clinician::list_clients,
        crate::enrollment::create_code,
        crate::clinician::record,
        crate::clinician::devices,
        crate::clinician::revoke_device,
        crate::clinician::schedule_session,
        crate::clinician::move_session,
        crate::clinician::add_note,
        crate::clinician::assign_pack,
        crate::alerts::list_alerts,
        crate::alerts::acknowledge,
    ),
    modifiers(&BearerTokens),
    tags(
        (name = "device", description = "Called by enrolled devices (token `kd_…`), and enrollment"),
        (name = "clinician", description = "Called by clinicians (token `kc_…`), within their clinic"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["device_token", "clinician_token"] {
            components.add_security_scheme(name, SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        }
    }
}

/// The API description.
pub fn openapi() -> OpenApiDoc {
    ApiDoc::openapi()
}

/// `GET /openapi.json`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", body = Object))
)]
pub(crate) async fn openapi_json() -> Json<&'static OpenApiDoc> {
    static DOC: OnceLock<OpenApiDoc> = OnceLock::new();
    Json(DOC.get_or_init(openapi))
}
