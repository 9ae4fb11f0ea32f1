//! The tenancy model and access rules through the directory service, and
//! `berth admin` through the real binary, for both metadata backends.

use crate::common::*;
use berth_core::access::{Actions, Principal, RepoPermission, Role};
use berth_core::{DirectoryError, NamespaceSpec, RegistryUserSpec};
use berth_oci::RepoName;

backend_tests!(
    bootstrap_creates_admin_and_platform_namespace,
    authentication_by_every_kind_of_credential,
    authorization_follows_roles_grants_and_visibility,
    only_the_right_people_administer,
    audit_log_records_changes_and_failures,
);

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).expect("repo name")
}

const PULL: Actions = Actions::PULL;
const NONE: Actions = Actions::NONE;
const PUSH: Actions = Actions::PUSH;

async fn bootstrap_creates_admin_and_platform_namespace(b: Backend) {
    let t = TestServer::start_with(b, |c| {
        c.admin_password = Some(berth::config::Secret::new("first-admin-pw"))
    })
    .await;
    let d = t.directory();
    let admin = d
        .authenticate("admin", "first-admin-pw", None)
        .await
        .expect("admin logs in");
    assert!(admin.is_platform_admin());
    let library = d.namespace("library").await.expect("platform namespace");
    assert!(library.public);
    // Bootstrapping again changes nothing.
    assert_eq!(d.bootstrap(Some("other")).await.expect("bootstrap"), None);
    assert!(d
        .authenticate("admin", "first-admin-pw", None)
        .await
        .is_ok());
    // Without a configured password one is generated (and returned to be logged once).
    let t2 = TestServer::start(b).await;
    assert!(t2
        .directory()
        .authenticate("admin", "anything", None)
        .await
        .is_err());
}

async fn authentication_by_every_kind_of_credential(b: Backend) {
    let t = TestServer::start(b).await;
    let d = t.directory();
    let sys = Principal::System;
    d.create_account(&sys, "alice", "alice@example.com", "alice-console", false)
        .await
        .expect("alice");
    let alice = d
        .authenticate("alice", "alice-console", Some("127.0.0.1"))
        .await
        .expect("console password");
    assert!(matches!(
        alice,
        Principal::Account {
            is_admin: false,
            ..
        }
    ));
    // The independent registry password works too, while both are set.
    d.set_registry_password(&alice, "alice", Some("alice-registry"), None)
        .await
        .expect("set");
    assert!(d
        .authenticate("alice", "alice-registry", None)
        .await
        .is_ok());
    assert!(d.authenticate("alice", "alice-console", None).await.is_ok());
    d.set_registry_password(&alice, "alice", None, None)
        .await
        .expect("clear");
    assert!(d
        .authenticate("alice", "alice-registry", None)
        .await
        .is_err());
    // Registry users: their own password; disabled and expired ones are refused.
    let spec = RegistryUserSpec {
        name: "ci-bot".into(),
        password: Some("ci-bot-secret".into()),
        ..Default::default()
    };
    let (_, generated) = d
        .create_registry_user(&alice, &spec)
        .await
        .expect("registry user");
    assert!(generated.is_none());
    assert!(matches!(
        d.authenticate("ci-bot", "ci-bot-secret", None).await,
        Ok(Principal::RegistryUser { .. })
    ));
    assert!(d
        .authenticate("ci-bot", "wrong-secret", None)
        .await
        .is_err());
    d.set_registry_user_enabled(&alice, "ci-bot", false)
        .await
        .expect("disable");
    assert!(matches!(
        d.authenticate("ci-bot", "ci-bot-secret", None).await,
        Err(DirectoryError::AuthenticationFailed)
    ));
    let expired = RegistryUserSpec {
        name: "old-bot".into(),
        password: Some("old-bot-secret".into()),
        expires_at: Some(1),
        ..Default::default()
    };
    d.create_registry_user(&alice, &expired)
        .await
        .expect("expired user");
    assert!(d
        .authenticate("old-bot", "old-bot-secret", None)
        .await
        .is_err());
    let (_, generated) = d
        .create_registry_user(
            &alice,
            &RegistryUserSpec {
                name: "gen-bot".into(),
                ..Default::default()
            },
        )
        .await
        .expect("generated");
    let pw = generated.expect("a generated password");
    assert!(d.authenticate("gen-bot", &pw, None).await.is_ok());
    // Disabled accounts, unknown names, and names shared between kinds.
    d.set_account_disabled(&sys, "alice", true)
        .await
        .expect("disable");
    assert!(d
        .authenticate("alice", "alice-console", None)
        .await
        .is_err());
    assert!(d.authenticate("nobody", "whatever-pw", None).await.is_err());
    assert!(matches!(
        d.create_account(&sys, "ci-bot", "", "password123", false)
            .await,
        Err(DirectoryError::Conflict(_))
    ));
    assert!(matches!(
        d.create_account(&sys, "Bad Name", "", "password123", false)
            .await,
        Err(DirectoryError::Invalid(_))
    ));
    assert!(matches!(
        d.create_account(&sys, "shorty", "", "short", false).await,
        Err(DirectoryError::Invalid(_))
    ));
}

async fn authorization_follows_roles_grants_and_visibility(b: Backend) {
    let t = TestServer::start(b).await;
    let d = t.directory();
    let sys = Principal::System;
    for name in ["owner", "dev", "guest", "outsider", "repo-writer"] {
        d.create_account(&sys, name, "", &format!("{name}-password"), false)
            .await
            .expect("account");
    }
    let login = |n: &'static str| async move {
        d.authenticate(n, &format!("{n}-password"), None)
            .await
            .expect("login")
    };
    let owner = login("owner").await;
    d.create_group(&sys, "team", "", Some("owner"))
        .await
        .expect("group");
    d.set_group_member(&owner, "team", "dev", Role::Developer)
        .await
        .expect("dev");
    d.set_group_member(&owner, "team", "guest", Role::Guest)
        .await
        .expect("guest");
    let private = NamespaceSpec {
        name: "secret".into(),
        group: Some("team".into()),
        ..Default::default()
    };
    d.create_namespace(&owner, &private)
        .await
        .expect("private ns");
    let public = NamespaceSpec {
        name: "open".into(),
        group: Some("team".into()),
        public: true,
        ..Default::default()
    };
    d.create_namespace(&owner, &public)
        .await
        .expect("public ns");
    d.set_repository_permission(
        &owner,
        &repo("secret/app/api"),
        "repo-writer",
        RepoPermission::Write,
    )
    .await
    .expect("perm");
    let (_, _) = d
        .create_registry_user(
            &owner,
            &RegistryUserSpec {
                name: "puller".into(),
                password: Some("puller-secret".into()),
                ..Default::default()
            },
        )
        .await
        .expect("user");
    d.set_grant(&owner, "puller", "secret", true, false)
        .await
        .expect("grant");
    let puller = d
        .authenticate("puller", "puller-secret", None)
        .await
        .expect("login");

    let who: Vec<(&str, Principal)> = vec![
        ("anonymous", Principal::Anonymous),
        ("owner", owner.clone()),
        ("dev", login("dev").await),
        ("guest", login("guest").await),
        ("outsider", login("outsider").await),
        ("repo-writer", login("repo-writer").await),
        ("puller", puller),
    ];
    // (principal, repository, expected)
    let expected: Vec<(&str, &str, Actions)> = vec![
        ("anonymous", "secret/app", NONE),
        ("anonymous", "open/app", PULL),
        ("anonymous", "library/base", PULL),
        ("owner", "secret/app", Actions::ALL),
        ("dev", "secret/app", Actions::ALL),
        ("guest", "secret/app", PULL),
        ("outsider", "secret/app", NONE),
        ("outsider", "open/app", PULL),
        ("outsider", "library/base", PULL),
        ("dev", "library/base", PULL),
        ("repo-writer", "secret/app/api", PUSH),
        ("repo-writer", "secret/app/other", NONE),
        ("puller", "secret/app", PULL),
        ("puller", "open/app", PULL),
        ("puller", "library/base", PULL),
    ];
    for (name, r, want) in expected {
        let p = &who.iter().find(|(n, _)| *n == name).expect("principal").1;
        assert_eq!(
            d.actions(p, &repo(r)).await.expect("actions"),
            want,
            "{name} on {r}"
        );
    }
    // Push implies pull for registry users; removing the grant removes access.
    let puller = &who[6].1;
    d.set_grant(&owner, "puller", "secret", false, true)
        .await
        .expect("grant");
    assert_eq!(d.actions(puller, &repo("secret/x")).await.expect("a"), PUSH);
    d.set_grant(&owner, "puller", "secret", false, false)
        .await
        .expect("grant");
    assert_eq!(d.actions(puller, &repo("secret/x")).await.expect("a"), NONE);
    // A namespace role on top of the group role: the higher counts.
    d.set_namespace_member(&owner, "secret", "guest", Role::Developer)
        .await
        .expect("member");
    assert_eq!(
        d.actions(&who[3].1, &repo("secret/app")).await.expect("a"),
        Actions::ALL
    );
    // Making the namespace public opens pulls to everyone.
    d.set_namespace_public(&owner, "secret", true)
        .await
        .expect("public");
    assert_eq!(
        d.actions(&Principal::Anonymous, &repo("secret/app"))
            .await
            .expect("a"),
        PULL
    );
    // Missing namespaces: accounts that may create in their default group
    // may push (auto-create), and pull (nothing yet), as clients ask both.
    let dev = &who[2].1;
    let missing = repo("brand-new/app");
    assert_eq!(
        d.actions(dev, &missing).await.expect("a"),
        Actions {
            pull: true,
            push: true,
            ..NONE
        }
    );
    assert_eq!(
        d.actions(&Principal::Anonymous, &missing).await.expect("a"),
        NONE
    );
    assert_eq!(d.actions(&who[6].1, &missing).await.expect("a"), NONE);
    d.ensure_namespace(dev, &missing)
        .await
        .expect("auto-create");
    let created = d.namespace("brand-new").await.expect("created");
    assert!(!created.public);
    assert_eq!(d.actions(dev, &missing).await.expect("a"), Actions::ALL);
    assert_eq!(d.actions(&who[4].1, &missing).await.expect("a"), NONE);
}

async fn only_the_right_people_administer(b: Backend) {
    let t = TestServer::start(b).await;
    let d = t.directory();
    let sys = Principal::System;
    for name in ["owner", "dev", "other"] {
        d.create_account(&sys, name, "", &format!("{name}-password"), false)
            .await
            .expect("account");
    }
    let owner = d
        .authenticate("owner", "owner-password", None)
        .await
        .expect("login");
    let dev = d
        .authenticate("dev", "dev-password", None)
        .await
        .expect("login");
    let other = d
        .authenticate("other", "other-password", None)
        .await
        .expect("login");
    d.create_group(&sys, "team", "", Some("owner"))
        .await
        .expect("group");
    d.set_group_member(&owner, "team", "dev", Role::Developer)
        .await
        .expect("dev");
    d.create_namespace(
        &owner,
        &NamespaceSpec {
            name: "ns".into(),
            group: Some("team".into()),
            ..Default::default()
        },
    )
    .await
    .expect("ns");
    let forbidden = |r: Result<(), DirectoryError>| {
        assert!(matches!(r, Err(DirectoryError::Forbidden(_))), "{r:?}")
    };
    // Developers create namespaces but do not administer them.
    d.create_namespace(
        &dev,
        &NamespaceSpec {
            name: "devs".into(),
            group: Some("team".into()),
            ..Default::default()
        },
    )
    .await
    .expect("dev creates");
    forbidden(
        d.set_namespace_member(&dev, "ns", "other", Role::Guest)
            .await,
    );
    forbidden(d.set_group_member(&dev, "team", "other", Role::Admin).await);
    // Someone who may not even see the namespace is told it does not exist.
    assert!(matches!(
        d.set_namespace_public(&other, "ns", true).await,
        Err(DirectoryError::NotFound(_))
    ));
    assert!(matches!(
        d.create_namespace(
            &other,
            &NamespaceSpec {
                name: "x".into(),
                group: Some("team".into()),
                ..Default::default()
            }
        )
        .await,
        Err(DirectoryError::Forbidden(_))
    ));
    assert!(matches!(
        d.create_account(&owner, "eve", "", "password123", false)
            .await,
        Err(DirectoryError::Forbidden(_))
    ));
    // Grants need both: owning the registry user and administering the namespace.
    let spec = RegistryUserSpec {
        name: "dev-bot".into(),
        password: Some("dev-bot-secret".into()),
        ..Default::default()
    };
    d.create_registry_user(&dev, &spec)
        .await
        .expect("dev's bot");
    forbidden(d.set_grant(&dev, "dev-bot", "ns", true, false).await);
    forbidden(d.set_grant(&owner, "dev-bot", "ns", true, false).await);
    d.set_grant(&sys, "dev-bot", "ns", true, false)
        .await
        .expect("platform admin may");
    // Someone else's registry user cannot be touched.
    forbidden(d.set_registry_user_enabled(&other, "dev-bot", false).await);
    forbidden(
        d.set_console_password(&other, "dev", "new-password", None)
            .await,
    );
    d.set_console_password(&dev, "dev", "new-password", None)
        .await
        .expect("own password");
    assert!(d.authenticate("dev", "new-password", None).await.is_ok());
    // Names: unique across namespaces, valid grammar.
    assert!(matches!(
        d.create_namespace(
            &owner,
            &NamespaceSpec {
                name: "ns".into(),
                group: Some("team".into()),
                ..Default::default()
            }
        )
        .await,
        Err(DirectoryError::Conflict(_))
    ));
    for bad in ["Upper", "a/b", "-x", ""] {
        assert!(
            matches!(
                d.create_namespace(
                    &owner,
                    &NamespaceSpec {
                        name: bad.into(),
                        group: Some("team".into()),
                        ..Default::default()
                    }
                )
                .await,
                Err(DirectoryError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
}

async fn audit_log_records_changes_and_failures(b: Backend) {
    let t = TestServer::start(b).await;
    let d = t.directory();
    let sys = Principal::System;
    d.create_account(&sys, "alice", "", "alice-password", false)
        .await
        .expect("account");
    assert!(d
        .authenticate("alice", "wrong-password", Some("192.0.2.7"))
        .await
        .is_err());
    d.create_group(&sys, "team", "", Some("alice"))
        .await
        .expect("group");
    let entries = d.store().list_audit(100).await.expect("audit");
    let failure = entries
        .iter()
        .find(|e| e.action == "auth.failure")
        .expect("failure audited");
    assert_eq!(failure.actor, "alice");
    assert_eq!(failure.client_addr.as_deref(), Some("192.0.2.7"));
    assert!(entries
        .iter()
        .any(|e| e.action == "group.member.set" && e.detail == "alice=admin"));
    assert!(entries
        .iter()
        .any(|e| e.action == "account.create" && e.target == "alice"));
    assert!(
        entries.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );
}

/// `berth admin` through the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env("BERTH_DATA_DIR", dir.path())
            .env("BERTH_ADMIN_PASSWORD", "cli-admin-password")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write");
        }
        let out = child.wait_with_output().expect("wait");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ok = |r: (bool, String, String)| {
        assert!(r.0, "stdout: {}\nstderr: {}", r.1, r.2);
        r.1
    };
    let out = ok(run(
        &[
            "admin",
            "account",
            "create",
            "alice",
            "--email",
            "a@example.com",
        ],
        None,
    ));
    let pw = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("generated password")
        .to_owned();
    ok(run(
        &["admin", "account", "create", "bob", "--password-stdin"],
        Some("bob-password\n"),
    ));
    ok(run(
        &["admin", "group", "create", "team", "--admin", "alice"],
        None,
    ));
    ok(run(
        &[
            "admin",
            "group",
            "member",
            "team",
            "bob",
            "--role",
            "developer",
        ],
        None,
    ));
    ok(run(
        &[
            "admin",
            "namespace",
            "create",
            "webapp",
            "--group",
            "team",
            "--label",
            "env=prod",
        ],
        None,
    ));
    ok(run(
        &[
            "admin",
            "registry-user",
            "create",
            "ci-bot",
            "--owner",
            "alice",
            "--password-stdin",
        ],
        Some("ci-bot-secret\n"),
    ));
    ok(run(
        &[
            "admin",
            "registry-user",
            "grant",
            "ci-bot",
            "webapp",
            "--push",
        ],
        None,
    ));
    ok(run(
        &[
            "admin",
            "repository",
            "permission",
            "webapp/api",
            "bob",
            "--permission",
            "manage",
        ],
        None,
    ));
    assert!(ok(run(&["admin", "group", "list"], None))
        .lines()
        .any(|l| l.starts_with("team\talice=admin,bob=developer")));
    let ns = ok(run(&["admin", "namespace", "list"], None));
    assert!(
        ns.lines()
            .any(|l| l.starts_with("webapp\tprivate\tteam\t{\"env\":\"prod\"}")),
        "{ns}"
    );
    assert!(ns.lines().any(|l| l.starts_with("library\tpublic")), "{ns}");
    assert!(ok(run(&["admin", "registry-user", "list"], None))
        .lines()
        .any(|l| l == "ci-bot\talice\tenabled\twebapp:push"));
    // Per-group namespace limits: team owns webapp, so a limit of 1 refuses a second.
    ok(run(&["admin", "group", "limit", "team", "1"], None));
    let (success, _, err) = run(
        &["admin", "namespace", "create", "second", "--group", "team"],
        None,
    );
    assert!(
        !success && err.contains("already has 1 namespaces"),
        "{err}"
    );
    ok(run(&["admin", "group", "limit", "team", "--default"], None));
    ok(run(
        &["admin", "namespace", "create", "second", "--group", "team"],
        None,
    ));
    // Errors are one readable line and a failing exit status.
    let (success, _, err) = run(
        &["admin", "group", "member", "team", "bob", "--role", "owner"],
        None,
    );
    assert!(
        !success && err.starts_with("error: unknown role") && !err.contains("backtrace"),
        "{err}"
    );
    let (success, _, err) = run(
        &["admin", "namespace", "create", "webapp", "--group", "team"],
        None,
    );
    assert!(!success && err.contains("already exists"), "{err}");
    // The accounts made on the command line log in through the service.
    let config = berth::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    };
    let server = berth::start(config).await.expect("start on the same data");
    let d = server.directory();
    assert!(d.authenticate("alice", &pw, None).await.is_ok());
    assert!(d
        .authenticate("admin", "cli-admin-password", None)
        .await
        .is_ok());
    let bot = d
        .authenticate("ci-bot", "ci-bot-secret", None)
        .await
        .expect("bot");
    assert_eq!(
        d.actions(&bot, &repo("webapp/site")).await.expect("a"),
        PUSH
    );
    let bob = d
        .authenticate("bob", "bob-password", None)
        .await
        .expect("bob");
    assert_eq!(
        d.actions(&bob, &repo("webapp/api")).await.expect("a"),
        Actions::ALL
    );
    server.shutdown().await.expect("shutdown");
}
