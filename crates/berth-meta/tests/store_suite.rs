//! One behaviour suite for the metadata store, run in process against
//! SQLite always and against PostgreSQL when `BERTH_TEST_POSTGRES_URL` (a
//! server's admin URL) is set, as `scripts/test-env.sh` does; each case on
//! a fresh database. With `BERTH_TEST_SERVICES` set (the full suite), a
//! missing PostgreSQL URL fails instead of skipping.

use std::sync::Arc;

use berth_meta::{
    BlobClaim, DirectoryStore, Eviction, LinkOutcome, MetaStore, NewAccount, NewManifest,
    NewRegistryUser, NewTrustRule, PostgresStore, PullIncrement, PutManifestOutcome, SqliteStore,
    TagLimit, UploadRecord,
};
use berth_oci::{Algorithm, Digest, RepoName, Tag};

/// A store under test, with what keeps its database alive.
struct Backend {
    name: &'static str,
    store: Arc<dyn MetaStore>,
    directory: Arc<dyn DirectoryStore>,
    gc: Arc<dyn berth_meta::GcStore>,
    /// PostgreSQL: the database's URL, for a test's own connections.
    url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("berth.db"))
        .await
        .expect("open SQLite");
    let store = Arc::new(store);
    Backend {
        name: "sqlite",
        directory: store.clone(),
        gc: store.clone(),
        store,
        url: None,
        _dir: Some(dir),
    }
}

async fn postgres() -> Option<Backend> {
    let admin = match std::env::var("BERTH_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var_os("BERTH_TEST_SERVICES").is_some() => {
            panic!("BERTH_TEST_SERVICES is set but BERTH_TEST_POSTGRES_URL is not")
        }
        Err(_) => return None,
    };
    let name = format!("berth_meta_suite_{}", unique());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin.as_str(), None),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    let url = match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    };
    let store = PostgresStore::connect(&url, 4)
        .await
        .expect("connect PostgreSQL");
    let store = Arc::new(store);
    Some(Backend {
        name: "postgres",
        directory: store.clone(),
        gc: store.clone(),
        store,
        url: Some(url),
        _dir: None,
    })
}

/// Every backend this run can reach.
async fn backends() -> Vec<Backend> {
    let mut all = vec![sqlite().await];
    all.extend(postgres().await);
    all
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos:x}_{:x}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).expect("repository name")
}

fn tag(name: &str) -> Tag {
    Tag::parse(name).expect("tag")
}

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, bytes)
}

/// A manifest of `repo` referencing `blobs`, tagged `tags`.
fn manifest(repo: &RepoName, content: &str, blobs: &[&Digest], tags: &[&str]) -> NewManifest {
    NewManifest {
        repo: repo.clone(),
        digest: digest_of(content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: content.as_bytes().to_vec(),
        blobs: blobs.iter().map(|d| (*d).clone()).collect(),
        children: Vec::new(),
        declared_sizes: Vec::new(),
        subject: None,
        artifact_type: None,
        annotations: None,
        tags: tags.iter().map(|t| tag(t)).collect(),
        tag_limit: None,
        immutable: Vec::new(),
        actor: "alice".into(),
        client_addr: Some("192.0.2.1".into()),
        now: 1_000,
        cached: false,
        jobs: Vec::new(),
        syncs: Vec::new(),
        events: Vec::new(),
    }
}

async fn link(store: &dyn MetaStore, repo: &RepoName, bytes: &[u8]) -> Digest {
    let d = digest_of(bytes);
    let outcome = store
        .link_blob(repo, &d, bytes.len() as i64, 1_000, None, None)
        .await
        .expect("link");
    assert!(matches!(outcome, LinkOutcome::Linked), "{outcome:?}");
    d
}

/// A tag limit's rule for the suite: tags pushed before `idle_before`,
/// oldest first (the store only runs the rule and applies its choice).
/// Records a collection started through the API, as a run to claim for.
async fn start_gc_run(gc: &dyn berth_meta::GcStore) -> i64 {
    gc.gc_start_run(&berth_meta::NewGcRun {
        cause: "api".into(),
        actor: "test".into(),
        dry_run: false,
        full_sweep: false,
        now: 1,
    })
    .await
    .unwrap()
}

fn oldest_idle(e: &Eviction<'_>) -> Option<Vec<String>> {
    let mut idle: Vec<_> = e.tags.iter().filter(|t| t.2 < e.idle_before).collect();
    idle.sort_by_key(|t| t.2);
    (idle.len() >= e.needed).then(|| idle.iter().take(e.needed).map(|t| t.0.clone()).collect())
}

fn stored(outcome: PutManifestOutcome) -> Vec<(String, String, bool)> {
    match outcome {
        PutManifestOutcome::Stored(evicted) => evicted,
        other => panic!("expected Stored, got {other:?}"),
    }
}

#[tokio::test]
async fn upload_sessions_live_version_and_end() {
    for b in backends().await {
        let s = b.store.as_ref();
        let up = UploadRecord {
            id: "u1".into(),
            repo: "team/app".into(),
            created_at: 10,
            updated_at: 10,
        };
        s.create_upload(&up).await.unwrap();
        let got = s.get_upload("u1").await.unwrap().expect(b.name);
        assert_eq!(got.repo, "team/app", "{}", b.name);
        assert_eq!(s.upload_count().await.unwrap(), 1, "{}", b.name);

        // The storage state is saved only over the version it was read at.
        let (v0, state) = s.upload_state("u1").await.unwrap().expect(b.name);
        assert_eq!(state, None, "{}", b.name);
        assert!(s.save_upload_state("u1", v0, "one").await.unwrap());
        assert!(
            !s.save_upload_state("u1", v0, "stale").await.unwrap(),
            "{}: a stale version must lose",
            b.name
        );
        let (v1, state) = s.upload_state("u1").await.unwrap().unwrap();
        assert_eq!(
            (v1 > v0, state.as_deref()),
            (true, Some("one")),
            "{}",
            b.name
        );

        // Idle sessions are found by their last activity.
        assert_eq!(s.idle_uploads(20).await.unwrap(), vec!["u1".to_owned()]);
        s.touch_upload("u1", 30).await.unwrap();
        assert!(s.idle_uploads(20).await.unwrap().is_empty(), "{}", b.name);

        assert!(s.delete_upload("u1").await.unwrap(), "{}", b.name);
        assert!(!s.delete_upload("u1").await.unwrap(), "{}", b.name);
        assert!(s.get_upload("u1").await.unwrap().is_none(), "{}", b.name);
        assert_eq!(s.upload_state("u1").await.unwrap(), None, "{}", b.name);
    }
}

#[tokio::test]
async fn blobs_link_per_repository_count_once_and_respect_the_quota() {
    for b in backends().await {
        let s = b.store.as_ref();
        let (a, other) = (repo("team/a"), repo("team/b"));
        let up = UploadRecord {
            id: "u-link".into(),
            repo: a.to_string(),
            created_at: 1,
            updated_at: 1,
        };
        s.create_upload(&up).await.unwrap();
        let bytes = b"layer one".as_slice();
        let d = digest_of(bytes);
        let outcome = s
            .link_blob(&a, &d, 9, 1_000, None, Some("u-link"))
            .await
            .unwrap();
        assert!(matches!(outcome, LinkOutcome::Linked), "{}", b.name);
        // The commit forgets its upload session in the same transaction.
        assert!(
            s.get_upload("u-link").await.unwrap().is_none(),
            "{}",
            b.name
        );
        assert!(s.repository_exists(&a).await.unwrap(), "{}", b.name);

        // Known to the registry, visible only where linked.
        assert_eq!(s.repo_blob_size(&a, &d).await.unwrap(), Some(9));
        assert_eq!(s.repo_blob_size(&other, &d).await.unwrap(), None);
        assert_eq!(s.blob_size(&d).await.unwrap(), Some(9), "{}", b.name);

        // A second repository of the namespace: the blob counts once.
        link(s, &other, bytes).await;
        assert_eq!(s.namespace_usage("team").await.unwrap(), 9, "{}", b.name);
        let mut holders = s.blob_repositories(&d, 10).await.unwrap();
        holders.sort();
        assert_eq!(holders, vec!["team/a", "team/b"], "{}", b.name);

        // A new blob past the quota is refused; one already held costs nothing.
        let big = digest_of(b"a big layer");
        let refused = s
            .link_blob(&a, &big, 100, 1_000, Some(50), None)
            .await
            .unwrap();
        assert!(
            matches!(refused, LinkOutcome::OverQuota { used: 9 }),
            "{}: {refused:?}",
            b.name
        );
        assert_eq!(s.repo_blob_size(&a, &big).await.unwrap(), None);
        let again = s.link_blob(&a, &d, 9, 1_000, Some(9), None).await.unwrap();
        assert!(matches!(again, LinkOutcome::Linked), "{}", b.name);

        assert!(s.unlink_blob(&a, &d).await.unwrap(), "{}", b.name);
        assert!(!s.unlink_blob(&a, &d).await.unwrap(), "{}", b.name);
        assert_eq!(s.repo_blob_size(&a, &d).await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_manifest_push_needs_its_blobs_and_stores_exact_bytes_and_tags() {
    for b in backends().await {
        let s = b.store.as_ref();
        let r = repo("team/app");
        let layer = digest_of(b"layer");
        let m = manifest(&r, r#"{"layers":["one"]}"#, &[&layer], &["v1", "latest"]);

        // Nothing is stored while a referenced blob is not in the repository.
        match s.put_manifest(&m).await.unwrap() {
            PutManifestOutcome::MissingBlobs(missing) => {
                assert_eq!(missing, vec![layer.clone()], "{}", b.name)
            }
            other => panic!("{}: {other:?}", b.name),
        }
        assert!(s.manifest_by_digest(&r, &m.digest).await.unwrap().is_none());

        link(s, &r, b"layer").await;
        assert!(stored(s.put_manifest(&m).await.unwrap()).is_empty());
        let by_tag = s.manifest_by_tag(&r, &tag("v1")).await.unwrap().unwrap();
        assert_eq!(by_tag.digest, m.digest, "{}", b.name);
        assert_eq!(by_tag.content, m.content, "{}", b.name);
        assert_eq!(by_tag.media_type, m.media_type, "{}", b.name);
        let by_digest = s.manifest_by_digest(&r, &m.digest).await.unwrap().unwrap();
        assert_eq!(by_digest.content, m.content, "{}", b.name);
        assert_eq!(
            s.manifest_tags(&r, &m.digest).await.unwrap().len(),
            2,
            "{}",
            b.name
        );

        // Tags list in lexical order, page by page.
        assert_eq!(
            s.list_tags(&r, None, 1).await.unwrap(),
            Some(vec!["latest".to_owned()])
        );
        assert_eq!(
            s.list_tags(&r, Some("latest"), 10).await.unwrap(),
            Some(vec!["v1".to_owned()])
        );
        assert_eq!(
            s.list_tags(&repo("team/none"), None, 10).await.unwrap(),
            None
        );

        // A push of another manifest with the tag moves it.
        let m2 = manifest(&r, r#"{"layers":["two"]}"#, &[&layer], &["v1"]);
        stored(s.put_manifest(&m2).await.unwrap());
        let moved = s.manifest_by_tag(&r, &tag("v1")).await.unwrap().unwrap();
        assert_eq!(moved.digest, m2.digest, "{}", b.name);

        // A tag delete leaves its manifest; a manifest delete takes its tags.
        assert!(s.delete_tag(&r, &tag("v1")).await.unwrap(), "{}", b.name);
        assert!(!s.delete_tag(&r, &tag("v1")).await.unwrap(), "{}", b.name);
        assert!(s
            .manifest_by_digest(&r, &m2.digest)
            .await
            .unwrap()
            .is_some());
        assert!(
            s.delete_manifest(&r, &m.digest).await.unwrap(),
            "{}",
            b.name
        );
        assert!(s
            .manifest_by_tag(&r, &tag("latest"))
            .await
            .unwrap()
            .is_none());
        assert!(
            !s.delete_manifest(&r, &m.digest).await.unwrap(),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn immutable_tags_and_the_tag_limit_are_kept_in_the_push_transaction() {
    for b in backends().await {
        let s = b.store.as_ref();
        let r = repo("team/locked");
        let layer = link(s, &r, b"layer").await;
        stored(
            s.put_manifest(&manifest(&r, r#"{"a":1}"#, &[&layer], &["v1.0"]))
                .await
                .unwrap(),
        );

        // An immutable tag pointing elsewhere is not overwritten.
        let mut over = manifest(&r, r#"{"a":2}"#, &[&layer], &["v1.0"]);
        over.immutable = vec!["v*".into()];
        match s.put_manifest(&over).await.unwrap() {
            PutManifestOutcome::Immutable { tag, pattern } => {
                assert_eq!(
                    (tag.as_str(), pattern.as_str()),
                    ("v1.0", "v*"),
                    "{}",
                    b.name
                )
            }
            other => panic!("{}: {other:?}", b.name),
        }
        let still = s.manifest_by_tag(&r, &tag("v1.0")).await.unwrap().unwrap();
        assert_eq!(still.content, br#"{"a":1}"#.to_vec(), "{}", b.name);
        assert!(
            s.manifest_by_digest(&r, &over.digest)
                .await
                .unwrap()
                .is_none(),
            "{}: a refused push stores nothing",
            b.name
        );

        // At the limit with no idle tag: refused. With idle tags: the
        // oldest is evicted to make room, in the same transaction.
        let mut full = manifest(&r, r#"{"a":3}"#, &[&layer], &["v2.0"]);
        full.tag_limit = Some(TagLimit {
            max: 1,
            evict: oldest_idle,
            audit_detail: |e| format!("evicted {}", e.tag),
            idle_before: 0,
        });
        match s.put_manifest(&full).await.unwrap() {
            PutManifestOutcome::TagLimit(max) => assert_eq!(max, 1, "{}", b.name),
            other => panic!("{}: {other:?}", b.name),
        }
        full.tag_limit = Some(TagLimit {
            max: 1,
            evict: oldest_idle,
            audit_detail: |e| format!("evicted {}", e.tag),
            idle_before: 5_000,
        });
        full.now = 6_000;
        let evicted = stored(s.put_manifest(&full).await.unwrap());
        assert_eq!(evicted.len(), 1, "{}: {evicted:?}", b.name);
        assert_eq!(evicted[0].0, "v1.0", "{}", b.name);
        assert_eq!(
            s.list_tags(&r, None, 10).await.unwrap(),
            Some(vec!["v2.0".to_owned()])
        );
    }
}

#[tokio::test]
async fn referrers_pull_counts_catalog_and_leases() {
    for b in backends().await {
        let s = b.store.as_ref();
        let r = repo("team/app");
        let layer = link(s, &r, b"layer").await;
        let image = manifest(&r, r#"{"image":1}"#, &[&layer], &["v1"]);
        stored(s.put_manifest(&image).await.unwrap());

        // A manifest with a subject is a referrer of it, filterable by type.
        let mut sig = manifest(&r, r#"{"signature":1}"#, &[&layer], &[]);
        sig.subject = Some(image.digest.clone());
        sig.artifact_type = Some("application/vnd.example.sig".into());
        stored(s.put_manifest(&sig).await.unwrap());
        let all = s.referrers(&r, &image.digest, None).await.unwrap();
        assert_eq!(all.len(), 1, "{}", b.name);
        assert_eq!(all[0].digest, sig.digest, "{}", b.name);
        assert_eq!(all[0].size, sig.content.len() as i64, "{}", b.name);
        let none = s
            .referrers(&r, &image.digest, Some("application/other"))
            .await
            .unwrap();
        assert!(none.is_empty(), "{}", b.name);

        // Batched pull counts add up, by tag and by manifest.
        let pull = |count| PullIncrement {
            repo: r.to_string(),
            digest: image.digest.to_string(),
            tag: Some("v1".into()),
            count,
            last: 2_000,
        };
        s.record_pulls(&[pull(2)]).await.unwrap();
        s.record_pulls(&[pull(3)]).await.unwrap();
        let stats = s.tag_stats(&r, &tag("v1")).await.unwrap().unwrap();
        assert_eq!(
            (stats.pull_count, stats.last_pulled_at),
            (5, Some(2_000)),
            "{}",
            b.name
        );
        let stats = s.manifest_stats(&r, &image.digest).await.unwrap().unwrap();
        assert_eq!(stats.pull_count, 5, "{}", b.name);

        // The catalog in lexical order, page by page.
        link(s, &repo("alpha/x"), b"x").await;
        assert_eq!(s.catalog(None, 1).await.unwrap(), vec!["alpha/x"]);
        assert_eq!(
            s.catalog(Some("alpha/x"), 10).await.unwrap(),
            vec!["team/app"],
            "{}",
            b.name
        );

        // A lease is one owner's until it ends.
        assert!(s.try_lease("gc", "node-a", 0, 100).await.unwrap());
        assert!(!s.try_lease("gc", "node-b", 50, 150).await.unwrap());
        assert!(s.try_lease("gc", "node-a", 50, 150).await.unwrap());
        assert!(s.try_lease("gc", "node-b", 151, 250).await.unwrap());
    }
}

#[tokio::test]
async fn trust_rules_belong_to_a_registry_user_and_go_with_it() {
    for b in backends().await {
        let d = b.directory.as_ref();
        let owner = d
            .create_account(&NewAccount {
                name: "owner",
                email: "o@example.com",
                password_hash: "x",
                is_admin: false,
                origin: "local",
                external_subject: None,
                now: 1,
            })
            .await
            .unwrap();
        let user = d
            .create_registry_user(&NewRegistryUser {
                name: "ci-bot",
                password_hash: "x",
                description: "",
                expires_at: None,
                owner_id: owner.id,
                now: 1,
            })
            .await
            .unwrap();
        let rule = |name| NewTrustRule {
            name,
            issuer: "https://ci.example.com",
            audience: "berth",
            subject: "repo:team/app:*",
            claims: r#"{"ref":"refs/heads/main"}"#,
            registry_user_id: user.id,
            created_by: "owner",
            now: 2,
        };
        let made = d.create_trust_rule(&rule("main")).await.unwrap();
        assert_eq!(
            (made.registry_user.as_str(), made.subject.as_str()),
            ("ci-bot", "repo:team/app:*"),
            "{}",
            b.name
        );
        assert!(
            d.create_trust_rule(&rule("main")).await.is_err(),
            "{}: names are unique",
            b.name
        );
        d.create_trust_rule(&rule("tags")).await.unwrap();
        let names =
            |v: Vec<berth_meta::TrustRule>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(
            names(d.trust_rules_of("ci-bot").await.unwrap()),
            ["main", "tags"],
            "{}",
            b.name
        );
        assert!(
            d.trust_rules_of("someone").await.unwrap().is_empty(),
            "{}",
            b.name
        );
        assert!(d.delete_trust_rule("tags").await.unwrap(), "{}", b.name);
        assert!(!d.delete_trust_rule("tags").await.unwrap(), "{}", b.name);
        assert_eq!(
            d.trust_rule("main").await.unwrap(),
            Some(made),
            "{}",
            b.name
        );
        // Deleting the registry user deletes its rules.
        assert!(d.delete_registry_user(user.id).await.unwrap());
        assert!(d.trust_rules().await.unwrap().is_empty(), "{}", b.name);
    }
}

#[tokio::test]
async fn external_accounts_and_the_memberships_mappings_make() {
    use berth_meta::MembershipKind::Group;
    for b in backends().await {
        let d = b.directory.as_ref();
        let new = |name, origin, subject| NewAccount {
            name,
            email: "e@example.com",
            password_hash: "!",
            is_admin: false,
            origin,
            external_subject: subject,
            now: 1,
        };
        let alice = d
            .create_account(&new("alice", "oidc:corp", Some("sub-1")))
            .await
            .unwrap();
        assert_eq!(alice.origin, "oidc:corp", "{}", b.name);
        // One provider id, one account; names unique across origins.
        assert!(
            d.create_account(&new("alice2", "oidc:corp", Some("sub-1")))
                .await
                .is_err(),
            "{}",
            b.name
        );
        assert!(
            d.create_account(&new("alice", "ldap:corp", Some("x")))
                .await
                .is_err(),
            "{}",
            b.name
        );
        let local = d
            .create_account(&NewAccount {
                is_admin: true,
                ..new("local", "local", None)
            })
            .await
            .unwrap();
        d.create_account(&new("local2", "local", None))
            .await
            .unwrap();
        let found = d.account_by_external("oidc:corp", "sub-1").await.unwrap();
        assert_eq!(found.map(|a| a.id), Some(alice.id), "{}", b.name);
        assert!(
            d.account_by_external("oidc:other", "sub-1")
                .await
                .unwrap()
                .is_none(),
            "{}",
            b.name
        );

        let team = d.create_group("team", "", 1).await.unwrap();
        let ops = d.create_group("ops", "", 1).await.unwrap();
        assert!(d
            .set_mapped_membership(Group, team.id, alice.id, "developer")
            .await
            .unwrap());
        assert!(
            !d.set_mapped_membership(Group, team.id, alice.id, "developer")
                .await
                .unwrap(),
            "{}: unchanged",
            b.name
        );
        assert!(
            d.set_mapped_membership(Group, team.id, alice.id, "admin")
                .await
                .unwrap(),
            "{}",
            b.name
        );
        // A membership made by hand is not the mapping's to change or take.
        d.set_group_member(ops.id, alice.id, "guest").await.unwrap();
        assert!(
            !d.set_mapped_membership(Group, ops.id, alice.id, "admin")
                .await
                .unwrap(),
            "{}",
            b.name
        );
        assert!(
            !d.remove_mapped_membership(Group, ops.id, alice.id)
                .await
                .unwrap(),
            "{}",
            b.name
        );
        let mapped = d.mapped_memberships(alice.id).await.unwrap();
        assert_eq!(mapped.len(), 1, "{}", b.name);
        assert_eq!(
            (mapped[0].target.as_str(), mapped[0].role.as_str()),
            ("team", "admin"),
            "{}",
            b.name
        );
        // Set by hand, a mapped membership becomes the hand's.
        d.set_group_member(team.id, alice.id, "guest")
            .await
            .unwrap();
        assert!(
            d.mapped_memberships(alice.id).await.unwrap().is_empty(),
            "{}",
            b.name
        );

        assert!(
            d.set_admin_by_mapping(alice.id, true, 2).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            d.account_by_id(alice.id).await.unwrap().unwrap().is_admin,
            "{}",
            b.name
        );
        assert!(
            d.set_admin_by_mapping(alice.id, false, 3).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            !d.account_by_id(alice.id).await.unwrap().unwrap().is_admin,
            "{}",
            b.name
        );
        // An administrator made by hand stays one.
        assert!(
            !d.set_admin_by_mapping(local.id, false, 3).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            d.account_by_id(local.id).await.unwrap().unwrap().is_admin,
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn group_mappings_are_kept_once_each() {
    for b in backends().await {
        let d = b.directory.as_ref();
        let m = |group: &str, kind: &str, target: &str| berth_meta::GroupMappingRecord {
            id: 0,
            origin: "oidc:corp".into(),
            external_group: group.into(),
            grant_kind: kind.into(),
            target: target.into(),
            role: if target.is_empty() {
                "".into()
            } else {
                "developer".into()
            },
            created_by: "admin".into(),
            created_at: 1,
        };
        let admins = d
            .create_group_mapping(&m("admins", "platform_admin", ""))
            .await
            .unwrap();
        assert!(
            d.create_group_mapping(&m("admins", "platform_admin", ""))
                .await
                .is_err(),
            "{}",
            b.name
        );
        d.create_group_mapping(&m("devs", "project_group", "team"))
            .await
            .unwrap();
        d.create_group_mapping(&m("devs", "namespace", "team"))
            .await
            .unwrap();
        assert_eq!(d.group_mappings().await.unwrap().len(), 3, "{}", b.name);
        assert_eq!(
            d.delete_group_mapping(admins.id).await.unwrap(),
            Some(admins.clone()),
            "{}",
            b.name
        );
        assert_eq!(
            d.delete_group_mapping(admins.id).await.unwrap(),
            None,
            "{}",
            b.name
        );
        assert_eq!(
            d.group_mappings().await.unwrap()[0].external_group,
            "devs",
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn pull_policies_one_per_kind_and_scope_and_announced() {
    for b in backends().await {
        let d = b.directory.as_ref();
        let mut feed = b.store.change_feed();
        assert_eq!(feed.next().await.unwrap(), vec![], "connected");
        let group = d.create_group("team", "", 1).await.unwrap();
        let ns = d
            .create_namespace(&berth_meta::NewNamespace {
                name: "team",
                group_id: group.id,
                public: false,
                description: "",
                category: "",
                labels: "{}",
                group_limit: None,
                now: 1,
            })
            .await
            .unwrap();
        let set = |namespace_id, mode: &'static str, settings: &'static str| {
            berth_meta::PullPolicyInput {
                namespace_id,
                kind: "signature",
                mode,
                settings,
                updated_by: "admin",
                now: 5,
            }
        };
        let platform = d.set_pull_policy(&set(None, "audit", "{}")).await.unwrap();
        assert_eq!(platform.namespace, None, "{}", b.name);
        let again = d
            .set_pull_policy(&set(None, "enforce", r#"{"keys":[]}"#))
            .await
            .unwrap();
        assert_eq!(
            (again.id, again.mode.as_str()),
            (platform.id, "enforce"),
            "{}",
            b.name
        );
        let theirs = d
            .set_pull_policy(&set(Some(ns.id), "audit", "{}"))
            .await
            .unwrap();
        assert_eq!(theirs.namespace.as_deref(), Some("team"), "{}", b.name);
        d.set_pull_policy(&set(Some(ns.id), "enforce", "{}"))
            .await
            .unwrap();
        let all = d.pull_policies().await.unwrap();
        assert_eq!(all.len(), 2, "{}: {all:?}", b.name);
        assert_eq!(all[1].mode, "enforce", "{}", b.name);

        // Every change is announced to the nodes' caches.
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.extend(feed.next().await.unwrap());
            if seen.contains(&berth_meta::changes::Change::PullPolicy) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            seen.contains(&berth_meta::changes::Change::PullPolicy),
            "{}: {seen:?}",
            b.name
        );

        assert!(d.delete_pull_policy(None, "signature").await.unwrap());
        assert!(!d.delete_pull_policy(None, "signature").await.unwrap());
        // The namespace's goes with it.
        assert!(d.delete_namespace(ns.id).await.unwrap());
        assert_eq!(d.pull_policies().await.unwrap(), vec![], "{}", b.name);
    }
}

#[tokio::test]
async fn inventories_advisories_and_findings_are_kept_by_digest() {
    use berth_meta::vulnerability::{AdvisoryRow, FindingRow, ImageFindings};
    for b in backends().await {
        let s = b.store.as_ref();
        let r = repo("team/app");
        let layer = link(s, &r, b"base layer").await;
        let image = manifest(&r, r#"{"image":"vuln"}"#, &[&layer], &["v1"]);
        stored(s.put_manifest(&image).await.unwrap());
        let names = vec!["openssl".to_owned(), "pip".to_owned()];
        s.put_layer_inventory(layer.as_str(), r#"{"l":1}"#, &names, 1)
            .await
            .unwrap();
        // Read again: replaced, not doubled.
        s.put_layer_inventory(layer.as_str(), r#"{"l":2}"#, &names, 2)
            .await
            .unwrap();
        assert_eq!(
            s.layer_inventory(layer.as_str()).await.unwrap().as_deref(),
            Some(r#"{"l":2}"#),
            "{}",
            b.name
        );
        // Not an image holding it until its own inventory is made.
        assert!(
            s.images_holding(&names).await.unwrap().is_empty(),
            "{}",
            b.name
        );
        assert!(!s.inventoried(image.digest.as_str()).await.unwrap());
        let mut feed = b.store.change_feed();
        feed.next().await.unwrap();
        s.put_image_inventory(
            image.digest.as_str(),
            r#"{"i":1}"#,
            &["from-sbom".into()],
            3,
        )
        .await
        .unwrap();
        assert!(s.inventoried(image.digest.as_str()).await.unwrap());
        let missing = "sha256:0000000000000000000000000000000000000000000000000000000000000002";
        assert_eq!(
            s.image_inventories(&[missing.into(), image.digest.to_string()])
                .await
                .unwrap(),
            [(image.digest.to_string(), r#"{"i":1}"#.to_owned())],
            "{}",
            b.name
        );
        assert_eq!(
            s.manifest_repositories(image.digest.as_str(), 10)
                .await
                .unwrap(),
            ["team/app"],
            "{}",
            b.name
        );
        // Nodes hear of it (their pull-policy verdicts wait for it).
        let ready = berth_meta::changes::Change::Findings(image.digest.to_string());
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.extend(feed.next().await.unwrap());
            if seen.contains(&ready) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(seen.contains(&ready), "{}: {seen:?}", b.name);
        assert_eq!(
            s.images_holding(&["pip".into(), "other".into()])
                .await
                .unwrap(),
            vec![image.digest.to_string()],
            "{}",
            b.name
        );
        // A name only an attached SBOM gives finds the image too, once.
        assert_eq!(
            s.images_holding(&["from-sbom".into(), "pip".into()])
                .await
                .unwrap(),
            vec![image.digest.to_string()],
            "{}",
            b.name
        );
        s.put_image_inventory(image.digest.as_str(), r#"{"i":2}"#, &[], 4)
            .await
            .unwrap();
        assert!(
            s.images_holding(&["from-sbom".into()])
                .await
                .unwrap()
                .is_empty(),
            "{}: replaced with the inventory",
            b.name
        );
        assert!(s
            .images_holding(&["other".into()])
            .await
            .unwrap()
            .is_empty());

        let adv = |id: &str, modified: &str, name: &str| AdvisoryRow {
            id: id.into(),
            modified: modified.into(),
            document: format!(r#"{{"id":"{id}"}}"#),
            names: vec![name.into()],
        };
        let changed = s
            .put_advisories(&[adv("A-1", "m1", "pip"), adv("A-2", "m1", "zlib")], 10)
            .await
            .unwrap();
        assert_eq!(changed, ["A-1", "A-2"], "{}", b.name);
        let changed = s
            .put_advisories(&[adv("A-1", "m1", "pip"), adv("A-2", "m2", "openssl")], 11)
            .await
            .unwrap();
        assert_eq!(changed, ["A-2"], "only what changed: {}", b.name);
        assert_eq!(s.advisory_count().await.unwrap(), 2);
        let naming = s
            .advisories_naming(&["openssl".into(), "pip".into()])
            .await
            .unwrap();
        assert_eq!(naming.len(), 2, "{}", b.name);
        assert!(
            s.advisories_naming(&["zlib".into()])
                .await
                .unwrap()
                .is_empty(),
            "A-2 moved on"
        );

        let f = |id: &str, at: i64| FindingRow {
            manifest_digest: image.digest.to_string(),
            advisory_id: id.into(),
            ecosystem: "PyPI".into(),
            package: "pip".into(),
            version: "23.0.1".into(),
            fixed: Some("23.3".into()),
            severity: "medium".into(),
            path: "x".into(),
            found_at: at,
        };
        let d = image.digest.as_str();
        let one = |findings: Vec<FindingRow>| {
            vec![ImageFindings {
                digest: d.to_owned(),
                findings,
            }]
        };
        let new = s
            .replace_findings(None, &one(vec![f("A-1", 20)]))
            .await
            .unwrap();
        assert_eq!(new.len(), 1, "{}", b.name);
        // Again, later: not new, first-found time kept.
        let new = s
            .replace_findings(None, &one(vec![f("A-1", 30), f("A-2", 30)]))
            .await
            .unwrap();
        assert_eq!(new.len(), 1, "{}", b.name);
        assert_eq!(new[0].advisory_id, "A-2");
        let all = s.findings(d).await.unwrap();
        assert_eq!((all.len(), all[0].found_at), (2, 20), "{}", b.name);
        // Re-matching one advisory leaves the others.
        s.replace_findings(Some(&["A-2".into()]), &one(vec![]))
            .await
            .unwrap();
        assert_eq!(s.findings(d).await.unwrap().len(), 1, "{}", b.name);
        // Many images at once, each keeping what it had.
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
        let mut o = f("A-2", 40);
        o.manifest_digest = other.into();
        let new = s
            .replace_findings(
                Some(&["A-1".into(), "A-2".into()]),
                &[
                    ImageFindings {
                        digest: d.to_owned(),
                        findings: vec![f("A-1", 40), f("A-2", 40)],
                    },
                    ImageFindings {
                        digest: other.to_owned(),
                        findings: vec![o],
                    },
                ],
            )
            .await
            .unwrap();
        assert_eq!(new.len(), 2, "A-2 twice: {}: {new:?}", b.name);
        let all = s.findings(d).await.unwrap();
        assert_eq!((all.len(), all[0].found_at), (2, 20), "{}", b.name);
        assert_eq!(s.findings(other).await.unwrap().len(), 1, "{}", b.name);
        s.replace_findings(Some(&["A-2".into()]), &one(vec![]))
            .await
            .unwrap();
        s.replace_findings(
            None,
            &[ImageFindings {
                digest: other.to_owned(),
                findings: vec![],
            }],
        )
        .await
        .unwrap();
        assert_eq!(s.findings_of_advisory("A-1").await.unwrap().len(), 1);

        // What is no longer stored takes its inventories and findings along:
        // the image's with its last manifest, the layer's with its blob.
        assert!(s.delete_manifest(&r, &image.digest).await.unwrap());
        assert!(!s.inventoried(d).await.unwrap(), "{}", b.name);
        assert!(s.findings(d).await.unwrap().is_empty(), "{}", b.name);
        assert!(s.unlink_blob(&r, &layer).await.unwrap());
        let run = start_gc_run(b.gc.as_ref()).await;
        // While a backup holds its lease, nothing is claimed; once it
        // lets go, the layer is.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let lease = format!("{}1", berth_meta::backup::BACKUP_LEASE);
        assert!(s
            .try_lease(&lease, "pid-1", now, now + 60_000)
            .await
            .unwrap());
        assert!(
            b.gc.gc_claim_blobs(run, None, None, 100)
                .await
                .unwrap()
                .claims
                .is_empty(),
            "{}",
            b.name
        );
        s.release_lease(&lease, "someone else").await.unwrap();
        assert!(
            b.gc.gc_claim_blobs(run, None, None, 100)
                .await
                .unwrap()
                .claims
                .is_empty(),
            "{}",
            b.name
        );
        s.release_lease(&lease, "pid-1").await.unwrap();
        let claims =
            b.gc.gc_claim_blobs(run, None, None, 100)
                .await
                .unwrap()
                .claims;
        assert!(
            claims.iter().any(|c| c.digest == layer.as_str()),
            "{}: {claims:?}",
            b.name
        );
        // Forgotten as a batch, in one transaction.
        let claimed: Vec<String> = claims.iter().map(|c| c.digest.clone()).collect();
        b.gc.gc_forget_blobs(run, &claimed).await.unwrap();
        for c in &claims {
            let d: berth_oci::Digest = c.digest.parse().unwrap();
            assert_eq!(s.blob_size(&d).await.unwrap(), None, "{}", b.name);
        }
        assert_eq!(s.layer_inventory(layer.as_str()).await.unwrap(), None);
        assert!(s.images_holding(&names).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_lost_link_is_restored_and_the_blob_step_estimates_its_work() {
    for b in backends().await {
        let s = b.store.as_ref();
        let r = repo("acct/app");
        let layer = link(s, &r, b"a referenced layer").await;
        let config = link(s, &r, b"its config").await;
        let m = manifest(&r, r#"{"acct":1}"#, &[&config, &layer], &["v1"]);
        assert!(stored(s.put_manifest(&m).await.unwrap()).is_empty());
        let full = s.namespace_usage("acct").await.unwrap();
        assert_eq!(
            full,
            (b"a referenced layer".len() + b"its config".len()) as i64
        );
        // Nothing to restore, nothing to collect.
        assert!(b.gc.gc_restore_links(2_000, 100).await.unwrap().is_empty());
        assert_eq!(
            b.gc.gc_estimate_blobs().await.unwrap(),
            (0, 0),
            "{}",
            b.name
        );

        // A link lost outside Berth: usage drops, the restore brings it back
        // (once), and the blob was never a candidate for collection.
        assert!(s.unlink_blob(&r, &layer).await.unwrap());
        assert_eq!(
            s.namespace_usage("acct").await.unwrap(),
            b"its config".len() as i64
        );
        assert_eq!(
            b.gc.gc_estimate_blobs().await.unwrap(),
            (0, 0),
            "{}",
            b.name
        );
        assert_eq!(
            b.gc.gc_restore_links(2_000, 100).await.unwrap(),
            vec![("acct/app".to_owned(), layer.as_str().to_owned())],
            "{}",
            b.name
        );
        assert_eq!(s.namespace_usage("acct").await.unwrap(), full, "{}", b.name);
        assert!(b.gc.gc_restore_links(2_000, 100).await.unwrap().is_empty());

        // An unreferenced, unlinked blob is what the blob step expects.
        let loose = link(s, &r, b"uploaded, never used").await;
        assert!(s.unlink_blob(&r, &loose).await.unwrap());
        assert_eq!(
            b.gc.gc_estimate_blobs().await.unwrap(),
            (1, b"uploaded, never used".len() as i64),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn untagged_manifests_and_unreferenced_links_are_collected_batch_by_batch() {
    for b in backends().await {
        let s = b.store.as_ref();
        let r = repo("acct/app");
        let kept = link(s, &r, b"tagged layer").await;
        let dropped = link(s, &r, b"untagged layer").await;
        let loose = [
            link(s, &r, b"loose one").await,
            link(s, &r, b"loose two").await,
        ];
        // Linked after the run's cutoff: an upload about to be referenced.
        let fresh = digest_of(b"fresh upload");
        s.link_blob(&r, &fresh, 12, 3_000, None, None)
            .await
            .unwrap();
        let tagged = manifest(&r, r#"{"t":1}"#, &[&kept], &["v1"]);
        let untagged = manifest(&r, r#"{"u":1}"#, &[&dropped], &[]);
        for m in [&tagged, &untagged] {
            stored(s.put_manifest(m).await.unwrap());
        }

        // Pushed at 1,000: a cutoff before that collects nothing.
        let none = b.gc.gc_delete_untagged(500, None, 10).await.unwrap();
        assert!(none.deleted.is_empty() && none.next.is_none(), "{}", b.name);
        // A batch of one reads on from its cursor, past the tagged one.
        let first = b.gc.gc_delete_untagged(2_000, None, 1).await.unwrap();
        assert_eq!(
            first.deleted,
            vec![("acct/app".to_owned(), untagged.digest.as_str().to_owned())],
            "{}",
            b.name
        );
        let rest =
            b.gc.gc_delete_untagged(2_000, first.next.as_ref(), 1)
                .await
                .unwrap();
        assert!(rest.deleted.is_empty() && rest.next.is_none(), "{}", b.name);
        let again = b.gc.gc_delete_untagged(2_000, None, 10).await.unwrap();
        assert!(again.deleted.is_empty(), "{}", b.name);

        // One link a batch: the untagged manifest's layer and the two loose
        // blobs go, each once; the tagged layer and the fresh link stay.
        let (mut deleted, mut cursor, mut batches) = (0, None, 0);
        loop {
            let batch =
                b.gc.gc_delete_links(2_000, cursor.as_ref(), 1)
                    .await
                    .unwrap();
            assert!(batch.deleted <= 1, "{}: {batch:?}", b.name);
            deleted += batch.deleted;
            batches += 1;
            match batch.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!((deleted, batches), (3, 4), "{}", b.name);
        for d in loose.iter().chain([&dropped]) {
            assert!(!s.unlink_blob(&r, d).await.unwrap(), "{}: {d}", b.name);
        }
        for d in [&kept, &fresh] {
            assert!(s.unlink_blob(&r, d).await.unwrap(), "{}: {d}", b.name);
        }
    }
}

#[tokio::test]
async fn blob_step_shards_are_leased_taken_over_and_counted_once() {
    for b in backends().await {
        let s = b.store.as_ref();
        let gc = b.gc.as_ref();
        let r = repo("acct/app");
        let mut loose = Vec::new();
        for i in 0..40 {
            let d = link(s, &r, format!("loose {i}").as_bytes()).await;
            assert!(s.unlink_blob(&r, &d).await.unwrap());
            loose.push(d.as_str().to_owned());
        }
        loose.sort();
        let kept = link(s, &r, b"still linked").await;
        let run = start_gc_run(gc).await;
        gc.gc_plan_shards(run, &["sha256:8".to_owned()])
            .await
            .unwrap();
        gc.gc_plan_shards(run, &["sha256:8".to_owned()])
            .await
            .unwrap();
        // Two shards, one node each; a third node finds none free.
        let a = gc.gc_take_shard(run, "a", 1_000, 2_000).await.unwrap();
        let a = a.expect("shard for a");
        assert_eq!((a.shard, a.after.as_str()), (0, ""), "{}", b.name);
        assert_eq!(a.until.as_deref(), Some("sha256:8"), "{}", b.name);
        let bee = gc.gc_take_shard(run, "b", 1_000, 2_000).await.unwrap();
        let bee = bee.expect("shard for b");
        assert_eq!((bee.shard, bee.until.as_deref()), (1, None), "{}", b.name);
        assert_eq!(
            gc.gc_take_shard(run, "c", 1_500, 2_500).await.unwrap(),
            None
        );

        // a claims two batches in its range, forgets the first, records
        // its cursor, and dies.
        let first = gc
            .gc_claim_blobs(run, Some(&a.after), a.until.as_deref(), 3)
            .await
            .unwrap();
        let second = gc
            .gc_claim_blobs(run, first.next.as_deref(), a.until.as_deref(), 3)
            .await
            .unwrap();
        let claimed: Vec<&BlobClaim> = first.claims.iter().chain(&second.claims).collect();
        assert!(!claimed.is_empty(), "{}", b.name);
        assert!(
            claimed.iter().all(|c| c.digest.as_str() <= "sha256:8"),
            "{}: {claimed:?}",
            b.name
        );
        let names =
            |claims: &[BlobClaim]| claims.iter().map(|c| c.digest.clone()).collect::<Vec<_>>();
        let (n, bytes) = gc
            .gc_forget_shard_blobs(&a, &names(&first.claims))
            .await
            .unwrap();
        assert_eq!(n, first.claims.len() as i64, "{}", b.name);
        assert_eq!(bytes, first.claims.iter().map(|c| c.size).sum::<i64>());
        assert!(gc
            .gc_shard_moved(&a, "a", second.next.as_deref(), 2_000)
            .await
            .unwrap());

        // Once a's lease is over, c takes the shard at a's cursor, with the
        // claims a left; a can no longer move or finish it.
        let c = gc.gc_take_shard(run, "c", 2_500, 9_000).await.unwrap();
        let c = c.expect("a's shard for c");
        assert_eq!((c.shard, c.cursor.as_deref()), (0, second.next.as_deref()));
        let left = gc.gc_shard_claims(&c, "", 100).await.unwrap();
        assert_eq!(left, second.claims, "{}", b.name);
        assert!(!gc.gc_shard_moved(&a, "a", None, 9_000).await.unwrap());
        assert!(!gc.gc_finish_shard(&a, "a").await.unwrap());
        gc.gc_forget_shard_blobs(&c, &names(&left)).await.unwrap();

        // Both shards to their end.
        let mut forgotten: Vec<String> = claimed.iter().map(|c| c.digest.clone()).collect();
        for (shard, owner) in [(&c, "c"), (&bee, "b")] {
            let mut after = shard.cursor.clone().unwrap_or_else(|| shard.after.clone());
            loop {
                let batch = gc
                    .gc_claim_blobs(run, Some(&after), shard.until.as_deref(), 3)
                    .await
                    .unwrap();
                gc.gc_forget_shard_blobs(shard, &names(&batch.claims))
                    .await
                    .unwrap();
                forgotten.extend(names(&batch.claims));
                match batch.next {
                    Some(next) => after = next,
                    None => break,
                }
            }
            assert!(gc.gc_finish_shard(shard, owner).await.unwrap());
        }
        forgotten.sort();
        assert_eq!(forgotten, loose, "{}: each loose blob once", b.name);
        let shards = gc.gc_shards(run).await.unwrap();
        assert!(shards.iter().all(|s| s.done), "{}: {shards:?}", b.name);
        let owners: Vec<_> = shards.iter().map(|s| s.owner.as_deref()).collect();
        assert_eq!(owners, [Some("c"), Some("b")], "{}", b.name);
        assert_eq!(
            shards.iter().map(|s| s.blobs_deleted).sum::<i64>(),
            40,
            "{}: counted once",
            b.name
        );
        assert_eq!(
            gc.gc_take_shard(run, "d", 99_000, 100_000).await.unwrap(),
            None
        );
        assert_eq!(
            s.blob_size(&kept).await.unwrap(),
            Some(b"still linked".len() as i64)
        );
    }
}

#[tokio::test]
async fn blob_claims_search_window_by_window_and_skip_what_is_linked() {
    for b in backends().await {
        let s = b.store.as_ref();
        let r = repo("acct/app");
        // 30 linked blobs and 5 loose ones, in random digest order: with a
        // batch of one, each search reads a window of 8 digests, so most
        // batches claim nothing and only say where the next one starts.
        let mut linked = Vec::new();
        for i in 0..30 {
            linked.push(link(s, &r, format!("kept {i}").as_bytes()).await);
        }
        let mut loose = Vec::new();
        for i in 0..5 {
            let d = link(s, &r, format!("loose {i}").as_bytes()).await;
            assert!(s.unlink_blob(&r, &d).await.unwrap());
            loose.push(d.as_str().to_owned());
        }
        let run = start_gc_run(b.gc.as_ref()).await;
        let (mut claimed, mut after, mut batches) = (Vec::new(), None::<String>, 0);
        loop {
            let batch =
                b.gc.gc_claim_blobs(run, after.as_deref(), None, 1)
                    .await
                    .unwrap();
            assert!(batch.claims.len() <= 1, "{}: {batch:?}", b.name);
            claimed.extend(batch.claims.into_iter().map(|c| c.digest));
            batches += 1;
            match batch.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        loose.sort();
        assert_eq!(claimed, loose, "{}: in digest order, each once", b.name);
        assert!(batches >= 35 / 8, "{}: {batches} batches", b.name);
        // Claimed blobs are not found again; linked ones never were.
        let again = b.gc.gc_claim_blobs(run, None, None, 100).await.unwrap();
        assert!(
            again.claims.is_empty() && again.next.is_none(),
            "{}",
            b.name
        );
        for (i, d) in linked.iter().enumerate() {
            let size = format!("kept {i}").len() as i64;
            let outcome = s.link_blob(&r, d, size, 2_000, None, None).await.unwrap();
            assert!(
                matches!(outcome, LinkOutcome::Linked),
                "{}: {outcome:?}",
                b.name
            );
        }
        let d = Digest::parse(&loose[0]).unwrap();
        let outcome = s.link_blob(&r, &d, 7, 2_000, None, None).await.unwrap();
        assert!(
            matches!(outcome, LinkOutcome::Collecting),
            "{}: {outcome:?}",
            b.name
        );
    }
}

/// The collection lock's key on PostgreSQL, the same in every build: a
/// push holds it shared, a collection step exclusively.
const GC_LOCK_KEY: i64 = 0x0062_6572_7468;

/// PostgreSQL grants a lock's requests in order: a collector *waiting* for
/// the lock exclusively would queue every push that starts meanwhile
/// behind it, for as long as the push it waits for runs. It tries instead,
/// so a new push takes the lock shared while the collector waits.
#[tokio::test]
async fn a_collector_waiting_for_the_lock_holds_back_no_new_push() {
    use sqlx::Connection;
    let Some(b) = postgres().await else {
        return;
    };
    let url = b.url.clone().expect("the database URL");
    let s = b.store.as_ref();
    let r = repo("acct/app");
    let d = link(s, &r, b"loose").await;
    assert!(s.unlink_blob(&r, &d).await.unwrap());
    let run = start_gc_run(b.gc.as_ref()).await;

    // A push in progress holds the lock shared.
    let mut first = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut first).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(GC_LOCK_KEY)
        .execute(&mut first)
        .await
        .unwrap();
    // The collector comes for the lock.
    let gc = b.gc.clone();
    let claim = tokio::spawn(async move { gc.gc_claim_blobs(run, None, None, 10).await });
    let mut watch = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut asked = false;
    for _ in 0..1000 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state <> 'idle' AND query LIKE '%advisory_xact_lock($1)%'",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if n > 0 {
            asked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(asked, "the collector never asked for the lock");

    // Another push starts: it takes the lock shared at once.
    let mut second = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut second).await.unwrap();
    sqlx::query("SET LOCAL lock_timeout = '2s'")
        .execute(&mut second)
        .await
        .unwrap();
    let taken = sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(GC_LOCK_KEY)
        .execute(&mut second)
        .await;
    assert!(
        taken.is_ok(),
        "a push waited behind a waiting collector: {taken:?}"
    );
    sqlx::query("COMMIT").execute(&mut second).await.unwrap();
    assert!(!claim.is_finished(), "the claim ran beside a push");

    // Once the pushes end, the collector claims.
    sqlx::query("COMMIT").execute(&mut first).await.unwrap();
    let claimed = claim.await.unwrap().unwrap();
    assert_eq!(
        claimed
            .claims
            .iter()
            .map(|c| c.digest.as_str())
            .collect::<Vec<_>>(),
        [d.as_str()]
    );
}
