//! The /api router: every endpoint with its method, and what applies to
//! all of them (JSON bodies are objects, answers are inert in a browser,
//! unknown paths and methods answer in problem JSON).

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::Router;

use crate::error::ApiError;
use crate::{
    gc, group_mappings, images, integrity, namespaces, openapi, people, policies,
    remote_replication, remotes, sboms, signature_policies, sync, trust_rules, vulnerabilities,
    vulnerability_policies, webhooks,
};
use berth_web::WebState;

/// Most bytes of a request body the API reads (its bodies are small).
const MAX_BODY: usize = 1 << 20;

/// Every JSON body the API takes is an object. serde would also read a
/// struct from an array (`[null, null]` as its fields in order), which the
/// document does not allow: such bodies are refused here, once, for all
/// endpoints.
async fn json_bodies_are_objects(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid",
                format!("the request body exceeds {MAX_BODY} bytes"),
            )
            .into_response()
        }
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return ApiError::invalid("invalid JSON body: it must be a JSON object").into_response();
    }
    let bytes = integral_numbers_as_integers(bytes);
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// In JSON (and JSON Schema) `7.0` is the integer 7, but serde refuses it
/// for an integer field: such numbers are rewritten as integers. A body
/// that does not parse is passed on as it is, for the handler to refuse.
fn integral_numbers_as_integers(bytes: axum::body::Bytes) -> axum::body::Bytes {
    fn fix(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    *v = serde_json::Value::from(f as i64);
                    return true;
                }
                false
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |c, i| fix(i) | c),
            serde_json::Value::Object(map) => map.values_mut().fold(false, |c, i| fix(i) | c),
            _ => false,
        }
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return bytes;
    };
    if !fix(&mut value) {
        return bytes;
    }
    serde_json::to_vec(&value).map(Into::into).unwrap_or(bytes)
}

/// Every API answer is data for programs: a browser that opens one
/// directly neither sniffs it into a page nor runs anything in it.
async fn inert(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; sandbox"),
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint; see /api/v1/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /api/v1/openapi.json",
    )
}

/// The /api router. Needs `ConnectInfo<SocketAddr>` for login throttling.
pub fn router(state: WebState) -> Router {
    let doc = Arc::new(openapi::openapi_json());
    let v1 = Router::new()
        .route(
            "/namespaces",
            get(namespaces::list).post(namespaces::create),
        )
        .route("/namespaces/batch-delete", post(namespaces::batch_delete))
        .route(
            "/namespaces/{ns}",
            get(namespaces::get_one)
                .patch(namespaces::update)
                .delete(namespaces::delete),
        )
        .route("/namespaces/{ns}/members", get(namespaces::members))
        .route(
            "/namespaces/{ns}/policies",
            get(policies::get).put(policies::put),
        )
        .route(
            "/namespaces/{ns}/retention/run",
            post(policies::run_retention),
        )
        .route(
            "/namespaces/{ns}/signature-policy",
            get(signature_policies::get)
                .put(signature_policies::put)
                .delete(signature_policies::delete),
        )
        .route(
            "/namespaces/{ns}/signature-policy/dry-run",
            post(signature_policies::dry_run),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/manifests/{digest}/signatures",
            get(signature_policies::signatures),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/manifests/{digest}/vulnerabilities",
            get(vulnerabilities::image),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/manifests/{digest}/sbom",
            get(sboms::sbom),
        )
        .route("/advisories", post(vulnerabilities::import))
        .route("/advisories/{id}/images", get(vulnerabilities::affected))
        .route("/images/by-package", get(vulnerabilities::by_package))
        .route(
            "/namespaces/{ns}/vulnerability-policy",
            get(vulnerability_policies::get)
                .put(vulnerability_policies::put)
                .delete(vulnerability_policies::delete),
        )
        .route(
            "/platform/vulnerability-policy",
            get(vulnerability_policies::platform_get)
                .put(vulnerability_policies::platform_put)
                .delete(vulnerability_policies::platform_delete),
        )
        .route(
            "/platform/signature-policy",
            get(signature_policies::platform_get)
                .put(signature_policies::platform_put)
                .delete(signature_policies::platform_delete),
        )
        .route(
            "/namespaces/{ns}/members/{account}",
            put(namespaces::set_member).delete(namespaces::remove_member),
        )
        .route("/namespaces/{ns}/grants", get(namespaces::grants))
        .route(
            "/namespaces/{ns}/grants/{user}",
            put(namespaces::set_grant).delete(namespaces::remove_grant),
        )
        .route("/namespaces/{ns}/permissions", get(namespaces::permissions))
        .route(
            "/namespaces/{ns}/permissions/{repo}/{account}",
            put(namespaces::set_permission).delete(namespaces::remove_permission),
        )
        .route("/repositories", get(images::list_all))
        .route("/repositories/batch-delete", post(images::batch_delete_any))
        .route("/namespaces/{ns}/repositories", get(images::list))
        .route(
            "/namespaces/{ns}/repositories/batch-delete",
            post(images::batch_delete),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}",
            get(images::get_one).delete(images::delete),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/tags",
            get(images::tags),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/tags/batch-delete",
            post(images::batch_delete_tags),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/tags/{tag}",
            axum::routing::delete(images::delete_tag),
        )
        .route("/shared/namespaces", get(namespaces::shared))
        .route("/platform/repositories", get(images::platform))
        .route(
            "/project-groups",
            get(people::groups).post(people::create_group),
        )
        .route(
            "/project-groups/{group}",
            get(people::group).patch(people::update_group),
        )
        .route(
            "/project-groups/{group}/members/{account}",
            put(people::set_group_member).delete(people::remove_group_member),
        )
        .route(
            "/accounts",
            get(people::accounts).post(people::create_account),
        )
        .route("/accounts/me", get(people::me).patch(people::update_me))
        .route(
            "/accounts/{account}",
            axum::routing::patch(people::update_account),
        )
        .route(
            "/registry-users",
            get(people::registry_users).post(people::create_registry_user),
        )
        .route(
            "/registry-users/{name}",
            get(people::registry_user_grants)
                .patch(people::update_registry_user)
                .delete(people::delete_registry_user),
        )
        .route(
            "/registry-users/{name}/trust-rules",
            get(trust_rules::list).post(trust_rules::create),
        )
        .route(
            "/registry-users/{name}/trust-rules/{rule}",
            get(trust_rules::get_one).delete(trust_rules::delete),
        )
        .route("/trust-rules", get(trust_rules::all))
        .route("/trust-rules/test", post(trust_rules::test))
        .route("/group-mappings/preview", post(group_mappings::preview))
        .route(
            "/group-mappings",
            get(group_mappings::list).post(group_mappings::create),
        )
        .route(
            "/group-mappings/{id}",
            axum::routing::delete(group_mappings::delete),
        )
        .route(
            "/tokens",
            get(people::tokens)
                .post(people::create_token)
                .delete(people::revoke_all_tokens),
        )
        .route("/tokens/{id}", axum::routing::delete(people::revoke_token))
        .route(
            "/session",
            get(people::session)
                .post(people::login)
                .delete(people::logout),
        )
        .route(
            "/session/sign-out-everywhere",
            post(people::sign_out_everywhere),
        )
        .route("/audit-log", get(people::audit))
        .route("/gc/runs", get(gc::runs).post(gc::start))
        .route("/gc/runs/{id}", get(gc::run))
        .route(
            "/integrity/runs",
            get(integrity::runs).post(integrity::start),
        )
        .route("/integrity/runs/{id}", get(integrity::run))
        .route(
            "/namespaces/{ns}/repositories/{repo}/sync-rules",
            get(sync::rules).post(sync::add_rule),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/sync-rules/{id}",
            axum::routing::delete(sync::delete_rule),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/sync",
            post(sync::start),
        )
        .route("/sync-records", get(sync::records))
        .route("/regions", get(sync::regions))
        .route(
            "/namespaces/{ns}/region-copies",
            get(sync::copy_regions).put(sync::set_copy_regions),
        )
        .route(
            "/namespaces/{ns}/replication",
            #[allow(deprecated)]
            get(sync::replication).put(sync::set_replication),
        )
        .route(
            "/webhooks",
            get(webhooks::platform_list).post(webhooks::platform_create),
        )
        .route(
            "/namespaces/{ns}/webhooks",
            get(webhooks::namespace_list).post(webhooks::namespace_create),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::get_one)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/ping", post(webhooks::ping))
        .route("/remotes", get(remotes::list).post(remotes::create))
        .route(
            "/remotes/{name}",
            get(remotes::get_one)
                .patch(remotes::update)
                .delete(remotes::delete),
        )
        .route("/remotes/{name}/test", post(remotes::test))
        .route("/proxy-namespaces", get(remotes::proxy_namespaces))
        .route(
            "/replication/rules",
            get(remote_replication::rules).post(remote_replication::create),
        )
        .route(
            "/replication/rules/{id}",
            get(remote_replication::get_one)
                .put(remote_replication::update)
                .delete(remote_replication::delete),
        )
        .route("/replication/rules/{id}/run", post(remote_replication::run))
        .route("/replication/runs", get(remote_replication::runs))
        .route("/replication/runs/{id}", get(remote_replication::run_one))
        .route("/replication/tasks", get(remote_replication::tasks))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery}",
            get(webhooks::delivery),
        )
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(webhooks::redeliver),
        )
        .with_state(state)
        .route("/openapi.json", get(openapi::serve).with_state(doc))
        .layer(axum::middleware::from_fn(json_bodies_are_objects));
    Router::new()
        .nest("/api/v1", v1)
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(inert))
}
