//! The console router: every page and form with its method, the embedded
//! assets, and the headers every page gets.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_web::WebState;

use crate::pages;
use crate::respond::PageError;
use crate::viewer::Viewer;

/// What a browser may do with the console's pages: run and style them
/// only with the console's own script and stylesheet (no inline script or
/// style, so injected markup runs nothing), send forms and requests only
/// here, and never show them in another site's frame.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

async fn page_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn asset_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../assets/app.css"),
    )
        .into_response()
}

async fn asset_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../assets/app.js"),
    )
        .into_response()
}

async fn not_found(viewer: Option<Viewer>) -> Response {
    let mut e = PageError::new(StatusCode::NOT_FOUND, "There is no such page.");
    if let Some(v) = &viewer {
        e = e.for_viewer(v);
    }
    e.into_response()
}

/// The console router (everything not under /v2, /api or the operations
/// endpoints). Needs `ConnectInfo<SocketAddr>` for login throttling.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/namespaces") }))
        .route("/assets/app.css", get(asset_css))
        .route("/assets/app.js", get(asset_js))
        .route(
            "/login",
            get(pages::session::login_page).post(pages::session::login),
        )
        .route("/login/oidc/{name}", get(pages::sso::start))
        .route("/login/oidc/{name}/callback", get(pages::sso::callback))
        .route("/login/oidc/{name}/signed-out", get(pages::sso::signed_out))
        .route("/logout", post(pages::session::logout))
        .route(
            "/namespaces",
            get(pages::namespaces::namespaces).post(pages::namespaces::create_namespace),
        )
        .route("/images", get(pages::images::images))
        .route("/images/batch-delete", post(pages::images::delete_images))
        .route(
            "/namespaces/{ns}/image-permissions",
            get(pages::images::permissions),
        )
        .route(
            "/namespaces/delete",
            post(pages::namespaces::delete_namespace),
        )
        .route(
            "/namespaces/batch-delete",
            post(pages::namespaces::delete_namespaces),
        )
        .route("/namespaces/{ns}", get(pages::namespaces::namespace))
        .route(
            "/namespaces/{ns}/edit",
            post(pages::namespaces::edit_namespace),
        )
        .route(
            "/namespaces/{ns}/images/delete",
            post(pages::namespaces::delete_image),
        )
        .route(
            "/namespaces/{ns}/images/batch-delete",
            post(pages::namespaces::delete_images),
        )
        .route("/namespaces/{ns}/tags", get(pages::namespaces::tags))
        .route(
            "/namespaces/{ns}/image-signatures",
            get(pages::image_signatures::page),
        )
        .route(
            "/namespaces/{ns}/image-vulnerabilities",
            get(pages::image_vulnerabilities::page),
        )
        .route("/namespaces/{ns}/sync", get(pages::sync::sync_page))
        .route("/namespaces/{ns}/sync-rules", post(pages::sync::add_rule))
        .route(
            "/namespaces/{ns}/sync-rules/delete",
            post(pages::sync::delete_rule),
        )
        .route("/namespaces/{ns}/sync/run", post(pages::sync::run_sync))
        .route(
            "/namespaces/{ns}/tags/delete",
            post(pages::namespaces::delete_tag),
        )
        .route(
            "/namespaces/{ns}/tags/batch-delete",
            post(pages::namespaces::delete_tags),
        )
        .route("/namespaces/{ns}/access", get(pages::access::access))
        .route(
            "/namespaces/{ns}/signatures",
            get(pages::signatures::page).post(pages::signatures::save),
        )
        .route(
            "/namespaces/{ns}/policies",
            get(pages::policies::policies).post(pages::policies::save),
        )
        .route(
            "/namespaces/{ns}/retention",
            post(pages::policies::retention),
        )
        .route("/namespaces/{ns}/members", post(pages::access::set_member))
        .route(
            "/namespaces/{ns}/members/remove",
            post(pages::access::remove_member),
        )
        .route(
            "/namespaces/{ns}/permissions",
            post(pages::access::set_permission),
        )
        .route(
            "/namespaces/{ns}/permissions/remove",
            post(pages::access::remove_permission),
        )
        .route("/namespaces/{ns}/grants", post(pages::access::set_grant))
        .route(
            "/namespaces/{ns}/grants/remove",
            post(pages::access::remove_grant),
        )
        .route(
            "/registry-users",
            get(pages::registry_users::registry_users)
                .post(pages::registry_users::create_registry_user),
        )
        .route(
            "/registry-users/trust-rules",
            post(pages::trust_rules::create),
        )
        .route(
            "/registry-users/{name}/trust-rules/{rule}/delete",
            post(pages::trust_rules::delete),
        )
        .route(
            "/registry-users/{name}/{action}",
            post(pages::registry_users::registry_user_action),
        )
        .route(
            "/project-groups",
            get(pages::groups::groups).post(pages::groups::create_group),
        )
        .route("/project-groups/{group}", get(pages::groups::group))
        .route(
            "/project-groups/{group}/members",
            post(pages::groups::set_group_member),
        )
        .route(
            "/project-groups/{group}/members/remove",
            post(pages::groups::remove_group_member),
        )
        .route(
            "/project-groups/{group}/limit",
            post(pages::groups::set_group_limit),
        )
        .route(
            "/project-groups/{group}/quota",
            post(pages::groups::set_group_quota),
        )
        .route("/account", get(pages::account::account))
        .route("/account/password", post(pages::account::change_password))
        .route(
            "/account/registry-password",
            post(pages::account::registry_password),
        )
        .route("/account/tokens", post(pages::account::create_token))
        .route(
            "/account/tokens/revoke-all",
            post(pages::account::revoke_all_tokens),
        )
        .route(
            "/account/sign-out-everywhere",
            post(pages::account::sign_out_everywhere),
        )
        .route(
            "/account/tokens/{id}/revoke",
            post(pages::account::revoke_token),
        )
        .route("/audit", get(pages::audit::audit))
        .route("/gc", get(pages::gc::page).post(pages::gc::start))
        .route(
            "/namespaces/{ns}/webhooks",
            get(pages::webhooks::namespace_page).post(pages::webhooks::namespace_create),
        )
        .route(
            "/webhooks",
            get(pages::webhooks::platform_page).post(pages::webhooks::platform_create),
        )
        .route("/webhooks/{id}/{action}", post(pages::webhooks::action))
        .route(
            "/remotes",
            get(pages::remotes::page).post(pages::remotes::create),
        )
        .route("/remotes/{name}/{action}", post(pages::remotes::action))
        .route(
            "/signatures",
            get(pages::signatures::platform_page).post(pages::signatures::save_platform),
        )
        .route("/sign-in", get(pages::sign_in_admin::page))
        .route("/sign-in/mappings", post(pages::sign_in_admin::add_mapping))
        .route(
            "/sign-in/mappings/preview",
            post(pages::sign_in_admin::preview_mapping),
        )
        .route(
            "/sign-in/trust-rules/test",
            post(pages::sign_in_admin::test_token),
        )
        .route(
            "/sign-in/mappings/{id}/delete",
            post(pages::sign_in_admin::delete_mapping),
        )
        .route(
            "/sign-in/{kind}/{name}/test",
            post(pages::sign_in_admin::test),
        )
        .route(
            "/replication",
            get(pages::remote_replication::page).post(pages::remote_replication::create),
        )
        .route(
            "/replication/{id}/{action}",
            post(pages::remote_replication::action),
        )
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(pages::webhooks::redeliver),
        )
        .fallback(not_found)
        .layer(axum::middleware::map_response(page_headers))
        .with_state(state)
}
