//! Console sign-in through a real OpenID provider (npm's `oidc-provider`)
//! beside local accounts: the first sign-in creates the account, group
//! mappings (a `groups` claim, and Keycloak's `realm_access.roles` from a
//! second provider entry) grant and take back roles at each sign-in, a
//! name taken by a local account is refused, the SSO user works on the
//! command line with a registry password, a forged callback is refused,
//! RP-initiated logout sends the browser to the provider, and an outage
//! leaves local accounts and open sessions working.

use berth::config::{GroupMappingSection, OidcProviderSection, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::oidc::{console_client, csrf, reserve_port, Browser, OidcProvider};
use crate::common::{client_as, create_account, Backend, TestServer};

fn provider(name: &str, issuer: &str, groups_claim: &str) -> OidcProviderSection {
    OidcProviderSection {
        name: name.into(),
        display_name: Some(format!("{name} SSO")),
        issuer: issuer.into(),
        client_id: "berth-console".into(),
        client_secret: Some(Secret::new("console-secret")),
        scopes: Some(vec!["profile".into(), "email".into(), "groups".into()]),
        username_claim: None,
        groups_claim: Some(groups_claim.into()),
    }
}

fn mapping(origin: &str, group: &str) -> GroupMappingSection {
    GroupMappingSection {
        origin: origin.into(),
        group: group.into(),
        ..Default::default()
    }
}

fn users(alice_groups: &[&str]) -> Value {
    json!({
        "alice": {"groups": alice_groups},
        "bob": {"groups": ["berth-admins"]},
        "carol": {"groups": ["team-devs"]},
        "erin": {"roles": ["berth-admin"]},
        "Frank Smith": {"groups": []},
    })
}

async fn setup(backend: Backend) -> (TestServer, OidcProvider) {
    let port = reserve_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let t = TestServer::start_with(backend, |c| {
        c.identity.oidc = vec![
            provider("corp", &issuer, "groups"),
            provider("kc", &issuer, "realm_access.roles"),
        ];
        c.identity.group_mappings = vec![
            GroupMappingSection {
                platform_admin: true,
                ..mapping("oidc:corp", "berth-admins")
            },
            GroupMappingSection {
                platform_admin: true,
                ..mapping("oidc:kc", "berth-admin")
            },
            GroupMappingSection {
                project_group: Some("team".into()),
                role: Some("developer".into()),
                ..mapping("oidc:corp", "team-devs")
            },
            GroupMappingSection {
                namespace: Some("shared".into()),
                role: Some("guest".into()),
                ..mapping("oidc:corp", "shared-readers")
            },
        ];
    })
    .await;
    for (path, body) in [
        ("/api/v1/project-groups", json!({"name": "team"})),
        (
            "/api/v1/namespaces",
            json!({"name": "teamns", "project_group": "team"}),
        ),
        ("/api/v1/namespaces", json!({"name": "shared"})),
    ] {
        let (s, v) = t.api(Method::POST, path, Some(body)).await;
        assert!(s.is_success(), "{path}: {v}");
    }
    let idp = OidcProvider::start_at(
        port,
        json!([console_client(&t.base)]),
        users(&["team-devs", "shared-readers"]),
    )
    .await;
    (t, idp)
}

async fn members(t: &TestServer, path: &str) -> Vec<(String, String)> {
    let (s, v) = t.api(Method::GET, path, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = if v.is_array() {
        v
    } else {
        v["members"].clone()
    };
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["account"]
                    .as_str()
                    .or(m["name"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                m["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn oidc_accounts_sign_in_beside_local_ones(backend: Backend) {
    let (t, mut idp) = setup(backend).await;
    let base = t.base.clone();

    // The login page offers each provider.
    let (_, _, login) = Browser::default().open(&format!("{base}/login")).await;
    assert!(
        login.contains("Sign in with corp SSO") && login.contains("Sign in with kc SSO"),
        "{login}"
    );

    // First sign-in: the account is made, with its origin and mapped roles.
    let alice = Browser::default();
    let (url, status, page) = alice.sign_in(&base, "alice").await;
    assert_eq!(
        (status, url.as_str()),
        (StatusCode::OK, format!("{base}/account").as_str()),
        "{page}"
    );
    assert!(page.contains("signs in through oidc:corp"), "{page}");
    *alice.csrf.lock().unwrap() = Some(csrf(&page));
    let (s, me) = alice
        .json(Method::GET, &format!("{base}/api/v1/accounts/me"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            me["name"].as_str(),
            me["origin"].as_str(),
            me["is_admin"].as_bool()
        ),
        (Some("alice"), Some("oidc:corp"), Some(false))
    );
    assert!(members(&t, "/api/v1/project-groups/team")
        .await
        .contains(&("alice".into(), "developer".into())));
    assert!(members(&t, "/api/v1/namespaces/shared/members")
        .await
        .contains(&("alice".into(), "guest".into())));

    // A group that makes platform administrators, by a `groups` claim or
    // by Keycloak's realm roles.
    for (who, via) in [("bob", "corp"), ("erin", "kc")] {
        let b = Browser::default();
        let (_, status, page) = b.sign_in_with(&base, via, who).await;
        assert_eq!(status, StatusCode::OK, "{who}: {page}");
        let (_, me) = b
            .json(Method::GET, &format!("{base}/api/v1/accounts/me"), None)
            .await;
        assert_eq!(
            (
                me["is_admin"].as_bool(),
                me["admin_by_group_mapping"].as_bool()
            ),
            (Some(true), Some(true)),
            "{who}: {me}"
        );
        assert_eq!(me["origin"], format!("oidc:{via}"));
    }

    // A name a local account has is refused, never merged.
    create_account(&t, "carol").await;
    let (_, status, page) = Browser::default().sign_in(&base, "carol").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("already taken"), "{page}");
    let (_, v) = t.api(Method::GET, "/api/v1/accounts", None).await;
    let carols: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == "carol")
        .collect();
    assert_eq!(carols.len(), 1);
    assert_eq!(carols[0]["origin"], "local");
    // A name that cannot be an account name is refused with the reason.
    let (_, status, page) = Browser::default().sign_in(&base, "Frank Smith").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("cannot name an account"), "{page}");

    // The command line: no console password, a registry password set
    // from the session (no current password to give), with alice's grants.
    assert_eq!(
        client_as("alice", "!")
            .get(t.url("/v2/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = alice
        .json(
            Method::PATCH,
            &format!("{base}/api/v1/accounts/me"),
            Some(json!({"registry_password": "alice-registry-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = alice
        .json(
            Method::PATCH,
            &format!("{base}/api/v1/accounts/me"),
            Some(json!({"console_password": "a-console-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("signs in through oidc:corp"),
        "{v}"
    );
    let cli = client_as("alice", "alice-registry-password");
    t.push_image_as(&cli, "teamns/app", "v1", b"pushed by an SSO user")
        .await;

    // The provider takes alice out of her groups: the next sign-in takes
    // the mapped roles back, and her registry password no longer pushes.
    idp.set_users(&users(&[]));
    let again = Browser::default();
    let (_, status, _) = again.sign_in(&base, "alice").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!members(&t, "/api/v1/project-groups/team")
        .await
        .iter()
        .any(|(n, _)| n == "alice"));
    // (Every node drops what it cached of her access through the change
    // feed, within a poll.)
    let mut status = StatusCode::ACCEPTED;
    for _ in 0..50 {
        status = cli
            .post(t.url("/v2/teamns/app/blobs/uploads/"))
            .send()
            .await
            .unwrap()
            .status();
        if status != StatusCode::ACCEPTED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );
    let (_, v) = t
        .api(Method::GET, "/api/v1/audit-log?per_page=200", None)
        .await;
    let audit = v["items"].to_string();
    assert!(
        audit.contains("project group team: developer (from group team-devs)"),
        "{audit}"
    );
    assert!(
        audit.contains("project group team: developer revoked"),
        "{audit}"
    );
    assert!(audit.contains("auth.sign_in"), "{audit}");
    let (_, v) = t.api(Method::GET, "/api/v1/accounts", None).await;
    assert_eq!(
        v.as_array()
            .unwrap()
            .iter()
            .filter(|a| a["name"] == "alice")
            .count(),
        1,
        "one account, not two"
    );

    // A callback that this browser did not start, or with another state.
    let (_, status, page) = Browser::default()
        .open(&format!("{base}/login/oidc/corp/callback?code=x&state=y"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Start again"), "{page}");
    let forged = Browser::default();
    let (url, _, _) = forged.open(&format!("{base}/login/oidc/corp")).await;
    assert!(url.contains("/interaction/"), "{url}");
    let (_, status, page) = forged
        .open(&format!(
            "{base}/login/oidc/corp/callback?code=x&state=not-the-state"
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("state does not match"), "{page}");
    // A provider that is not configured.
    let (_, status, _) = Browser::default()
        .open(&format!("{base}/login/oidc/nope"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Sign-out sends the browser on to the provider's end-session page.
    let (_, _, page) = again.open(&format!("{base}/account")).await;
    let (url, _, page) = again
        .submit(&format!("{base}/logout"), &[("_csrf", &csrf(&page))])
        .await;
    assert_eq!(url, format!("{base}/login/oidc/corp/signed-out"));
    assert!(
        page.contains(&format!(
            "{}/session/end?client_id=berth-console",
            idp.issuer
        )),
        "{page}"
    );
    assert!(again.cookie(&base, "berth_session").is_none());

    // Outage: a clear message, local accounts and open sessions go on.
    let bob = Browser::default();
    bob.sign_in(&base, "bob").await;
    idp.stop().await;
    let (_, status, page) = Browser::default()
        .open(&format!("{base}/login/oidc/corp"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.contains("Sign-in is unavailable"), "{page}");
    let (s, _) = bob
        .json(Method::GET, &format!("{base}/api/v1/accounts/me"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (url, status, _) = Browser::default()
        .submit(
            &format!("{base}/login"),
            &[
                ("username", "admin"),
                ("password", crate::common::ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        (status, url),
        (StatusCode::OK, format!("{base}/namespaces"))
    );
    assert_eq!(t.get("/readyz").await.status(), StatusCode::OK);

    // A disabled SSO account is refused everywhere.
    idp.restart().await;
    let (s, v) = t
        .api(
            Method::PATCH,
            "/api/v1/accounts/alice",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (url, status, page) = Browser::default().sign_in(&base, "alice").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{url}");
    assert!(page.contains("disabled"), "{url} {page}");
    assert_eq!(
        cli.get(t.url("/v2/")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn mappings_made_through_the_api_apply_at_the_next_sign_in(backend: Backend) {
    let (t, _idp) = setup(backend).await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/group-mappings",
            Some(json!({"origin": "oidc:corp", "group": "team-devs", "namespace": "shared", "role": "admin"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().unwrap();
    for (body, why) in [
        (
            json!({"origin": "oidc:nope", "group": "g", "platform_admin": true}),
            "no configured provider",
        ),
        (
            json!({"origin": "oidc:corp", "group": "g", "namespace": "missing", "role": "guest"}),
            "not found",
        ),
        (
            json!({"origin": "oidc:corp", "group": "g", "platform_admin": true, "namespace": "shared"}),
            "exactly one",
        ),
    ] {
        let (s, v) = t
            .api(Method::POST, "/api/v1/group-mappings", Some(body))
            .await;
        assert!(s.is_client_error(), "{v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(why),
            "{why}: {v}"
        );
    }
    let (_, list) = t.api(Method::GET, "/api/v1/group-mappings", None).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 5, "{list:?}");
    assert!(list[..4].iter().all(|m| m["read_only"] == true));
    assert_eq!(list[4]["created_by"], "admin");

    // The dry run shows what the groups would give, before anyone signs in.
    let tr = &t;
    let preview = |groups: Value| async move {
        let (s, v) = tr
            .api(
                Method::POST,
                "/api/v1/group-mappings/preview",
                Some(json!({"origin": "oidc:corp", "groups": groups})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["grants"].to_string()
    };
    let grants = preview(json!(["team-devs"])).await;
    assert!(
        grants.contains("admin on namespace shared (from team-devs)"),
        "{grants}"
    );
    assert_eq!(preview(json!(["nobody-maps-this"])).await, "[]");

    // The highest role wins: admin from the API's mapping, guest from the file's.
    Browser::default().sign_in(&t.base, "alice").await;
    assert!(members(&t, "/api/v1/namespaces/shared/members")
        .await
        .contains(&("alice".into(), "admin".into())));
    let (s, _) = t
        .api(
            Method::DELETE,
            &format!("/api/v1/group-mappings/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    Browser::default().sign_in(&t.base, "alice").await;
    assert!(members(&t, "/api/v1/namespaces/shared/members")
        .await
        .contains(&("alice".into(), "guest".into())));
    let (_, v) = t
        .api(Method::GET, "/api/v1/audit-log?per_page=200", None)
        .await;
    let audit = v["items"].to_string();
    assert!(
        audit.contains("group_mapping.create") && audit.contains("group_mapping.delete"),
        "{audit}"
    );
}

backend_tests!(
    oidc_accounts_sign_in_beside_local_ones,
    mappings_made_through_the_api_apply_at_the_next_sign_in
);

/// The console's sign-in through the provider in a real headless Chromium:
/// the login page's button, the provider's form, back to the console
/// signed in with the roles the groups give, and sign-out at the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_through_the_provider_in_chromium() {
    let (t, idp) = setup(Backend::Sqlite).await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sso-screenshots");
    let b = crate::common::webdriver::Browser::start(&shots).await;
    b.goto(&format!("{}/login", t.base)).await;
    b.wait_text("Sign in with corp SSO").await;
    b.screenshot("01-login-page").await;
    b.click("#sso-corp").await;
    b.find("input[name=login]").await;
    assert!(b.url().await.starts_with(&idp.issuer), "{}", b.url().await);
    b.fill("input[name=login]", "alice").await;
    b.fill("input[name=password]", "anything").await;
    b.click("button[type=submit]").await;
    b.find("#who").await;
    assert_eq!(b.text("#who").await, "alice");
    b.goto(&format!("{}/account", t.base)).await;
    b.wait_text("signs in through oidc:corp").await;
    b.screenshot("02-signed-in").await;
    // The project group the mapping gave is hers to see.
    b.goto(&format!("{}/project-groups", t.base)).await;
    b.wait_text("team").await;
    b.click("#logout").await;
    let mut at = String::new();
    for _ in 0..50 {
        at = b.url().await;
        if at.starts_with(&idp.issuer) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        at.starts_with(&format!("{}/session/end", idp.issuer)),
        "{at}"
    );
    b.close().await;
}
