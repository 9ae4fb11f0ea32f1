//! Upgrades: a database at every earlier schema version, holding data
//! written at that version, is migrated to this build's schema and its
//! data read back through the store; a database a newer build migrated
//! further still opens (rolling upgrades). On SQLite always, and on
//! PostgreSQL when `BERTH_TEST_POSTGRES_URL` is set.
//!
//! The earlier schemas are made by the earlier migrations themselves (the
//! first N files of `migrations/`, which are never edited once released:
//! sqlx refuses a database whose applied migration's checksum changed).

use std::path::{Path, PathBuf};

use berth_meta::{MetaStore, PostgresStore, SqliteStore, SCHEMA_VERSION};
use berth_oci::{Digest, RepoName, Tag};
use sqlx::migrate::Migrator;

const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;
const LAYER_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn sha256(bytes: &[u8]) -> String {
    Digest::of_bytes(berth_oci::Algorithm::Sha256, bytes).to_string()
}

/// An image manifest and an index over it, as pushed.
fn manifests() -> (Vec<u8>, Vec<u8>) {
    let image = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{LAYER_DIGEST}","size":4096}}]}}"#,
        sha256(CONFIG),
        CONFIG.len()
    )
    .into_bytes();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{}}}]}}"#,
        sha256(&image),
        image.len()
    )
    .into_bytes();
    (image, index)
}

/// The first `n` migrations of a backend, in a directory of their own.
fn first_migrations(backend: &str, n: i64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&from)
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in files.iter().take(n as usize) {
        std::fs::copy(f, dir.path().join(f.file_name().unwrap())).expect("copy");
    }
    dir
}

/// What an earlier release wrote: a repository with an image (config and
/// layer linked, tagged `v1`) and an index over it (tagged `all`), in the
/// tables and columns the first schema has; later migrations only add.
const FIXTURE: &[&str] = &[
    "INSERT INTO repositories (id, name, created_at) VALUES (1, 'lib/app', 1000)",
    "INSERT INTO blobs (digest, size, created_at) VALUES ($config, $config_size, 1000)",
    "INSERT INTO blobs (digest, size, created_at) VALUES ($layer, 4096, 1000)",
    "INSERT INTO repository_blobs (repo_id, digest, linked_at) VALUES (1, $config, 1000)",
    "INSERT INTO repository_blobs (repo_id, digest, linked_at) VALUES (1, $layer, 1000)",
    "INSERT INTO manifests (repo_id, digest, media_type, size, content, pushed_at) \
     VALUES (1, $image, 'application/vnd.oci.image.manifest.v1+json', $image_size, $image_bytes, 1000)",
    "INSERT INTO manifests (repo_id, digest, media_type, size, content, pushed_at) \
     VALUES (1, $index, 'application/vnd.oci.image.index.v1+json', $index_size, $index_bytes, 1001)",
    "INSERT INTO manifest_refs (repo_id, digest, ref_digest, kind) VALUES (1, $image, $config, 0)",
    "INSERT INTO manifest_refs (repo_id, digest, ref_digest, kind) VALUES (1, $image, $layer, 0)",
    "INSERT INTO manifest_refs (repo_id, digest, ref_digest, kind) VALUES (1, $index, $image, 1)",
    "INSERT INTO tags (repo_id, name, digest, pushed_at) VALUES (1, 'v1', $image, 1000)",
    "INSERT INTO tags (repo_id, name, digest, pushed_at) VALUES (1, 'all', $index, 1001)",
];

/// The fixture's statements with their values as literals (the same text
/// for both databases: hex strings and a blob literal each understands).
fn fixture(postgres: bool) -> Vec<String> {
    let (image, index) = manifests();
    let bytes = |b: &[u8]| {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if postgres {
            format!("'\\x{hex}'::bytea")
        } else {
            format!("X'{hex}'")
        }
    };
    FIXTURE
        .iter()
        .map(|s| {
            s.replace("$config_size", &CONFIG.len().to_string())
                .replace("$config", &format!("'{}'", sha256(CONFIG)))
                .replace("$layer", &format!("'{LAYER_DIGEST}'"))
                .replace("$image_size", &image.len().to_string())
                .replace("$image_bytes", &bytes(&image))
                .replace("$image", &format!("'{}'", sha256(&image)))
                .replace("$index_size", &index.len().to_string())
                .replace("$index_bytes", &bytes(&index))
                .replace("$index", &format!("'{}'", sha256(&index)))
        })
        .collect()
}

/// The fixture reads back whole through the store of this build.
async fn assert_served(store: &dyn MetaStore, from: i64) {
    let (image, index) = manifests();
    let repo = RepoName::parse("lib/app").unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let m = store
        .manifest_by_tag(&repo, &Tag::parse("v1").unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("from schema {from}: v1 is gone"));
    assert_eq!(m.content, image, "from schema {from}");
    let i = store
        .manifest_by_tag(&repo, &Tag::parse("all").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i.content, index, "from schema {from}");
    let layer: Digest = LAYER_DIGEST.parse().unwrap();
    assert_eq!(
        store.repo_blob_size(&repo, &layer).await.unwrap(),
        Some(4096)
    );
    let config: Digest = sha256(CONFIG).parse().unwrap();
    assert_eq!(
        store.repo_blob_size(&repo, &config).await.unwrap(),
        Some(CONFIG.len() as i64)
    );
    let tags = store.list_tags(&repo, None, 10).await.unwrap().unwrap();
    assert_eq!(tags, ["all", "v1"], "from schema {from}");
    let parents = store.manifest_parents(&repo, &m.digest).await.unwrap();
    assert_eq!(parents, [i.digest], "from schema {from}");
    assert_eq!(store.catalog(None, 10).await.unwrap(), ["lib/app"]);
}

#[tokio::test]
async fn sqlite_databases_of_every_earlier_schema_upgrade_with_their_data() {
    for n in 1..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .foreign_keys(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            let earlier = first_migrations("sqlite", n);
            Migrator::new(earlier.path())
                .await
                .unwrap()
                .run(&pool)
                .await
                .unwrap_or_else(|e| panic!("schema {n}: {e}"));
            for sql in fixture(false) {
                sqlx::query(&sql)
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("schema {n}: {sql}: {e}"));
            }
            pool.close().await;
        }
        let store = SqliteStore::open(&path)
            .await
            .unwrap_or_else(|e| panic!("migrating from schema {n}: {e}"));
        assert_served(&store, n).await;
    }
}

#[tokio::test]
async fn postgres_databases_of_every_earlier_schema_upgrade_with_their_data() {
    let Some(admin) = postgres_admin() else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .unwrap();
    for n in 1..SCHEMA_VERSION {
        let name = format!("berth_upgrade_{n}_{}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        let url = database_url(&admin, &name);
        {
            let db = sqlx::PgPool::connect(&url).await.unwrap();
            let earlier = first_migrations("postgres", n);
            Migrator::new(earlier.path())
                .await
                .unwrap()
                .run(&db)
                .await
                .unwrap_or_else(|e| panic!("schema {n}: {e}"));
            for sql in fixture(true) {
                sqlx::query(&sql)
                    .execute(&db)
                    .await
                    .unwrap_or_else(|e| panic!("schema {n}: {sql}: {e}"));
            }
            db.close().await;
        }
        let store = PostgresStore::connect(&url, 2)
            .await
            .unwrap_or_else(|e| panic!("migrating from schema {n}: {e}"));
        assert_served(&store, n).await;
        drop(store);
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&pool)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_database_a_newer_build_migrated_further_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    drop(SqliteStore::open(&path).await.unwrap());
    // What a newer build's migration leaves: its row, and a column added.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let future = SCHEMA_VERSION + 1;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES ($1, 'a newer release', CURRENT_TIMESTAMP, TRUE, X'00', 1)",
    )
    .bind(future)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE manifests ADD COLUMN newer_field TEXT")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = SqliteStore::open(&path)
        .await
        .expect("an older build opens a newer schema");
    assert_eq!(store.schema_version().await.unwrap(), future);
}

fn postgres_admin() -> Option<String> {
    match std::env::var("BERTH_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("BERTH_TEST_SERVICES").is_some() => {
            panic!("BERTH_TEST_SERVICES is set but BERTH_TEST_POSTGRES_URL is not")
        }
        Err(_) => None,
    }
}

fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
