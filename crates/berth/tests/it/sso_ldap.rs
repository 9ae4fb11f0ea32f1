//! LDAP directories against a real OpenLDAP `slapd`: search-then-bind
//! with a service account over LDAPS and over StartTLS (a test CA), groups
//! by `memberOf` and by a nested group search, two directories asked in
//! order, group mappings to roles, directory passwords for the console
//! and the registry, a user taken out of a group or disabled in the
//! directory refused within the cache time everywhere, a name clash with
//! a local account refused, and an outage that leaves local accounts
//! working.

use berth::config::{GroupMappingSection, LdapSection, Secret};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::ldap::{Slapd, BASE, SERVICE_DN, SERVICE_PASSWORD};
use crate::common::oidc::{csrf, Browser};
use crate::common::{client_as, Backend, TestServer, ADMIN_PASSWORD};

fn directory(s: &Slapd, name: &str) -> LdapSection {
    LdapSection {
        name: name.into(),
        ca_cert: Some(s.ca_file()),
        bind_dn: SERVICE_DN.into(),
        bind_password: Some(Secret::new(SERVICE_PASSWORD)),
        // Who the directory calls disabled is left out by the filter.
        user_filter: "(&(uid={username})(!(description=disabled)))".into(),
        cache_secs: 1,
        ..LdapSection::default()
    }
}

fn grant(origin: &str, group: &str) -> GroupMappingSection {
    GroupMappingSection {
        origin: origin.into(),
        group: format!("cn={group},ou=groups,{BASE}"),
        ..Default::default()
    }
}

async fn setup(backend: Backend) -> (TestServer, Slapd) {
    let slapd = Slapd::start().await;
    let t = TestServer::start_with(backend, |c| {
        c.identity.ldap = vec![
            // People: LDAPS, groups from the memberOf overlay.
            LdapSection {
                url: format!("ldaps://127.0.0.1:{}", slapd.ldaps_port),
                user_base: format!("ou=people,{BASE}"),
                member_of_attribute: Some("memberOf".into()),
                ..directory(&slapd, "corp")
            },
            // Partners: StartTLS, groups by a nested search.
            LdapSection {
                url: format!("ldap://127.0.0.1:{}", slapd.ldap_port),
                starttls: true,
                user_base: format!("ou=partners,{BASE}"),
                group_base: Some(format!("ou=groups,{BASE}")),
                nested_groups: true,
                ..directory(&slapd, "partners")
            },
        ];
        c.identity.group_mappings = vec![
            GroupMappingSection {
                platform_admin: true,
                ..grant("ldap:corp", "admins")
            },
            GroupMappingSection {
                project_group: Some("team".into()),
                role: Some("developer".into()),
                ..grant("ldap:corp", "devs")
            },
            GroupMappingSection {
                project_group: Some("team".into()),
                role: Some("developer".into()),
                // Upper case: DNs compare without regard to case.
                group: format!("CN=platform,OU=groups,{BASE}"),
                ..grant("ldap:partners", "platform")
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
    ] {
        let (s, v) = t.api(Method::POST, path, Some(body)).await;
        assert!(s.is_success(), "{path}: {v}");
    }
    (t, slapd)
}

async fn token_status(t: &TestServer, user: &str, password: &str) -> StatusCode {
    client_as(user, password)
        .get(t.url("/auth/token?service=berth&scope=repository:teamns/app:push,pull"))
        .send()
        .await
        .unwrap()
        .status()
}

/// Wait (a few cache periods at most) until pushing as `client` gets
/// `want`.
async fn push_becomes(t: &TestServer, client: &reqwest::Client, want: &[StatusCode]) -> StatusCode {
    let mut status = StatusCode::OK;
    for _ in 0..80 {
        status = client
            .post(t.url("/v2/teamns/app/blobs/uploads/"))
            .send()
            .await
            .unwrap()
            .status();
        if want.contains(&status) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    status
}

async fn directory_users_sign_in_and_lose_access_with_the_directory(backend: Backend) {
    let (t, mut slapd) = setup(backend).await;

    // A directory password on the command line: the account is made, its
    // groups give it its roles.
    let alice = client_as("alice", "alice-directory-password");
    t.push_image_as(&alice, "teamns/app", "v1", b"pushed by a directory user")
        .await;
    let (_, v) = t.api(Method::GET, "/api/v1/accounts", None).await;
    let a = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "alice")
        .cloned()
        .expect("alice");
    assert_eq!(
        (a["origin"].as_str(), a["email"].as_str()),
        (Some("ldap:corp"), Some("alice@example.com"))
    );
    assert_eq!(
        token_status(&t, "alice", "wrong").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token_status(&t, "alice", "").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token_status(&t, "nobody", "x").await,
        StatusCode::UNAUTHORIZED
    );

    // The console with the directory password; admins by group.
    let bob = Browser::default();
    let (url, status, _) = bob
        .submit(
            &format!("{}/login", t.base),
            &[("username", "bob"), ("password", "bob-directory-password")],
        )
        .await;
    assert_eq!(
        (status, url),
        (StatusCode::OK, format!("{}/namespaces", t.base))
    );
    let (_, me) = bob
        .json(Method::GET, &format!("{}/api/v1/accounts/me", t.base), None)
        .await;
    assert_eq!(
        (me["origin"].as_str(), me["is_admin"].as_bool()),
        (Some("ldap:corp"), Some(true)),
        "{me}"
    );

    // The second directory, StartTLS, nested group (contractors ⊂ platform).
    let dave = client_as("dave", "dave-directory-password");
    t.push_image_as(&dave, "teamns/app", "v2", b"pushed by a partner")
        .await;
    let (_, v) = t.api(Method::GET, "/api/v1/accounts", None).await;
    assert!(v.to_string().contains("ldap:partners"), "{v}");

    // A directory name that a local account has is refused, not merged.
    let (_, v) = t.api(Method::GET, "/api/v1/accounts", None).await;
    assert_eq!(
        v.as_array()
            .unwrap()
            .iter()
            .filter(|a| a["name"] == "admin")
            .count(),
        1
    );
    assert_eq!(
        token_status(&t, "admin", "clash-password").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token_status(&t, "admin", ADMIN_PASSWORD).await,
        StatusCode::OK
    );

    // Out of the group: the mapped role goes within the cache time.
    slapd
        .modify("modify", &format!("dn: cn=devs,ou=groups,{BASE}\nchangetype: modify\ndelete: member\nmember: uid=alice,ou=people,{BASE}\n"))
        .await;
    let s = push_becomes(
        &t,
        &alice,
        &[StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED],
    )
    .await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED,
        "{s}"
    );

    // Disabled in the directory: refused everywhere (registry, console
    // session), within the cache time.
    let (_, _, _) = bob.open(&format!("{}/namespaces", t.base)).await;
    slapd
        .modify("modify", &format!("dn: uid=bob,ou=people,{BASE}\nchangetype: modify\nadd: description\ndescription: disabled\n"))
        .await;
    let mut refused = false;
    for _ in 0..80 {
        let (s, _) = bob
            .json(Method::GET, &format!("{}/api/v1/accounts/me", t.base), None)
            .await;
        if s == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "bob's console session outlived his directory account"
    );
    assert_eq!(
        token_status(&t, "bob", "bob-directory-password").await,
        StatusCode::UNAUTHORIZED
    );
    let (_, v) = t
        .api(Method::GET, "/api/v1/audit-log?per_page=200", None)
        .await;
    let audit = v["items"].to_string();
    assert!(
        audit.contains("bob is no longer in directory corp"),
        "{audit}"
    );
    assert!(
        audit.contains("project group team: developer revoked"),
        "{audit}"
    );

    // The directory down: its users get a clear answer, local accounts
    // and /readyz go on.
    slapd.stop().await;
    let r = client_as("dave", "dave-directory-password")
        .get(t.url("/auth/token?service=berth"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    // (dave's login is cached for a few seconds; a new name is not.)
    let r2 = client_as("erin", "x")
        .get(t.url("/auth/token?service=berth"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r2.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{status} {body}"
    );
    assert!(r2.text().await.unwrap().contains("cannot be reached"));
    let (_, status, page) = Browser::default()
        .submit(
            &format!("{}/login", t.base),
            &[("username", "erin"), ("password", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert_eq!(
        token_status(&t, "admin", ADMIN_PASSWORD).await,
        StatusCode::OK
    );
    assert_eq!(t.get("/readyz").await.status(), StatusCode::OK);
}

async fn the_sign_in_page_tests_directories_and_maps_groups(backend: Backend) {
    let (t, mut slapd) = setup(backend).await;
    let base = t.base.clone();
    let admin = Browser::default();
    admin
        .submit(
            &format!("{base}/login"),
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    let (_, status, page) = admin.open(&format!("{base}/sign-in")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("ldap:corp") && page.contains("ldap:partners") && page.contains("read-only"),
        "{page}"
    );
    let token = csrf(&page);
    let test = |user: &'static str| {
        let (admin, base, token) = (&admin, &base, &token);
        async move {
            admin
                .submit(
                    &format!("{base}/sign-in/directories/corp/test"),
                    &[("_csrf", token), ("username", user)],
                )
                .await
        }
    };
    let (_, _, page) = test("alice").await;
    assert!(
        page.contains("uid=alice,ou=people,dc=example,dc=com") && page.contains("cn=devs"),
        "{page}"
    );
    let (_, _, page) = test("nobody").await;
    assert!(page.contains("no active user"), "{page}");
    let (_, _, page) = admin
        .submit(
            &format!("{base}/sign-in/mappings"),
            &[
                ("_csrf", &token),
                ("origin", "ldap:corp"),
                ("group", &format!("cn=admins,ou=groups,{BASE}")),
                ("grant", "namespace"),
                ("target", "teamns"),
                ("role", "guest"),
            ],
        )
        .await;
    assert!(
        page.contains("now get: guest on namespace teamns"),
        "{page}"
    );
    let (_, v) = t.api(Method::GET, "/api/v1/group-mappings", None).await;
    assert_eq!(v.as_array().unwrap().len(), 4, "{v}");
    let (_, _, page) = admin
        .submit(
            &format!("{base}/sign-in/mappings/preview"),
            &[
                ("_csrf", &token),
                ("origin", "ldap:corp"),
                (
                    "groups",
                    &format!("CN=Admins,ou=groups,{BASE}\nsomething-else"),
                ),
            ],
        )
        .await;
    assert!(
        page.contains("guest on namespace teamns (from cn=admins"),
        "{page}"
    );

    // Not for others.
    let alice = Browser::default();
    alice
        .submit(
            &format!("{base}/login"),
            &[
                ("username", "alice"),
                ("password", "alice-directory-password"),
            ],
        )
        .await;
    let (_, status, _) = alice.open(&format!("{base}/sign-in")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, page) = alice.open(&format!("{base}/account")).await;
    let theirs = csrf(&page);
    for (path, form) in [
        (
            "/sign-in/directories/corp/test",
            vec![("_csrf", theirs.as_str()), ("username", "bob")],
        ),
        (
            "/sign-in/mappings",
            vec![
                ("_csrf", theirs.as_str()),
                ("origin", "ldap:corp"),
                ("group", "x"),
                ("grant", "platform_admin"),
            ],
        ),
        (
            "/sign-in/mappings/preview",
            vec![
                ("_csrf", theirs.as_str()),
                ("origin", "ldap:corp"),
                ("groups", "x"),
            ],
        ),
        (
            "/sign-in/trust-rules/test",
            vec![("_csrf", theirs.as_str()), ("token", "a.b.c")],
        ),
    ] {
        let (_, _, page) = alice.submit(&format!("{base}{path}"), &form).await;
        assert!(page.contains("platform administrators"), "{path}: {page}");
    }
    let (_, v) = t.api(Method::GET, "/api/v1/group-mappings", None).await;
    assert_eq!(v.as_array().unwrap().len(), 4, "nothing added: {v}");

    // A directory that is down says so.
    slapd.stop().await;
    let (_, _, page) = test("alice").await;
    assert!(page.contains("cannot be reached"), "{page}");
}

backend_tests!(
    directory_users_sign_in_and_lose_access_with_the_directory,
    the_sign_in_page_tests_directories_and_maps_groups
);
