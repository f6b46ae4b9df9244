//! The OpenAPI description of the whole API, served at `GET /openapi.json`.

use std::sync::OnceLock;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
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
        crate::server::readyz,
        crate::metrics::endpoint::metrics,
        openapi_json,
        crate::enrollment::enroll,
        crate::sync::sync,
        crate::packs::current_pack,
        crate::packs::publish_pack,
        crate::clinician::create_client,
        crate::clinician::list_clients,
        crate::enrollment::create_code,
        crate::clinician::record,
        crate::fhir::export,
        crate::clinician::devices,
        crate::clinician::revoke_device,
        crate::clinician::schedule_session,
        crate::clinician::move_session,
        crate::clinician::add_note,
        crate::clinician::assign_pack,
        crate::alerts::list_alerts,
        crate::alerts::acknowledge,
        crate::alerts::reopen,
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
        for name in ["device_token", "clinician_token", "metrics_token"] {
            components.add_security_scheme(name, SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        }
    }
}

/// The component name of the clinician's record view.
const RECORD_VIEW: &str = "CareRecordView";

/// The API description, as served. The clinician's record view is
/// described by the JSON Schema generated from katcore's own types
/// (`katcore::record::view_json_schema`), spliced in as JSON: utoipa's
/// schema model cannot hold all of it (tuples, `oneOf` beside properties).
pub fn openapi() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let generated = katcore::record::view_json_schema();
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        if let Some(definitions) = generated["definitions"].as_object() {
            schemas.extend(definitions.iter().map(|(name, schema)| (name.clone(), schema.clone())));
        }
        schemas.insert(RECORD_VIEW.to_owned(), generated["root"].clone());
    }
    let response = "/paths/~1v1~1clients~1{client_id}~1record/get/responses/200/content/application~1json/schema";
    if let Some(schema) = doc.pointer_mut(response) {
        *schema = serde_json::json!({"$ref": format!("#/components/schemas/{RECORD_VIEW}")});
    }
    doc
}

/// `GET /openapi.json`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", body = Object))
)]
pub(crate) async fn openapi_json() -> Json<&'static Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(openapi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_view_is_described_by_the_generated_schema() {
        let doc = openapi();
        let generated = katcore::record::view_json_schema();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas[RECORD_VIEW], generated["root"], "every keyword of the view schema survives");
        for (name, schema) in generated["definitions"].as_object().unwrap() {
            assert_eq!(&schemas[name], schema, "{name}");
        }
        for name in ["Vitals", "UrgentItem", "UnreadableEntry", "SessionView"] {
            assert!(schemas[name].is_object(), "{name}");
        }
        let response = &doc["paths"]["/v1/clients/{client_id}/record"]["get"]["responses"]["200"];
        assert_eq!(response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/CareRecordView");
    }
}
