//! Test harness: a real Berth server on a random port, over a fresh SQLite
//! data directory or a fresh PostgreSQL database, and small helpers that
//! speak the /v2 protocol.
#![allow(dead_code)]

pub mod cli;
pub mod ldap;
pub mod notation;
pub mod oidc;
pub mod process;
pub mod reference;
pub mod relay;
pub mod signing;
pub mod sigstore;
pub mod webdriver;

use std::path::{Path, PathBuf};

use berth::Config;
use reqwest::{Method, Response, StatusCode};
use sha2_digest::sha256_hex;

pub mod sha2_digest {
    /// Hex SHA-256, computed with the registry's own hasher.
    pub fn sha256_hex(data: &[u8]) -> String {
        berth_oci::Digest::of_bytes(berth_oci::Algorithm::Sha256, data)
            .hex()
            .to_owned()
    }
}

/// Password of the platform administrator `admin` in test servers.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// An HTTP client that sends HTTP Basic credentials with every request.
pub fn client_as(user: &str, password: &str) -> reqwest::Client {
    use base64::Engine;
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&value).expect("header"),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

/// An HTTP client without credentials.
pub fn anonymous_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Create an account (password `a-long-password`) as the platform
/// administrator; returns a client logged in as it.
pub async fn create_account(t: &TestServer, name: &str) -> reqwest::Client {
    let (s, v) = t
        .api(
            reqwest::Method::POST,
            "/api/v1/accounts",
            Some(serde_json::json!({"name": name, "email": format!("{name}@example.com"), "password": "a-long-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    client_as(name, "a-long-password")
}

/// A new account that creates `namespace` (and so administers it).
pub async fn namespace_owner(t: &TestServer, account: &str, namespace: &str) -> reqwest::Client {
    let owner = create_account(t, account).await;
    let (s, v) = t
        .api_as(
            &owner,
            reqwest::Method::POST,
            "/api/v1/namespaces",
            Some(serde_json::json!({"name": namespace})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    owner
}

/// Which metadata backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// PostgreSQL with blobs in the test S3 bucket (Garage), under a
    /// prefix of the test's own.
    PostgresS3,
}

impl Backend {
    /// Whether blobs live on the local filesystem.
    pub fn is_fs(self) -> bool {
        self != Backend::PostgresS3
    }
}

/// Point `config` at the test S3 bucket (Garage), under `prefix`.
pub fn use_test_bucket(config: &mut Config, prefix: &str) {
    test_bucket_storage(&mut config.storage, prefix);
}

/// Point a storage table at the test S3 bucket (Garage), under `prefix`.
pub fn test_bucket_storage(storage: &mut berth::config::StorageConfig, prefix: &str) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the suite with scripts/test.sh, which starts Garage")
        })
    };
    storage.kind = berth::config::StorageKind::S3;
    let s3 = &mut storage.s3;
    s3.endpoint = Some(var("BERTH_TEST_S3_ENDPOINT"));
    s3.bucket = var("BERTH_TEST_S3_BUCKET");
    s3.region = var("BERTH_TEST_S3_REGION");
    s3.access_key_id = var("BERTH_TEST_S3_ACCESS_KEY_ID");
    s3.secret_access_key = berth::config::Secret::new(var("BERTH_TEST_S3_SECRET_ACCESS_KEY"));
    s3.prefix = prefix.to_owned();
    s3.part_size_mib = 5;
    // Tests read blobs from Berth itself; the redirect tests and the real
    // clients' tests turn the default redirect back on.
    s3.redirect = false;
}

/// The test bucket, reached directly (to change objects behind Berth's back).
pub fn test_bucket_client() -> object_store::aws::AmazonS3 {
    let mut config = berth::Config::default();
    use_test_bucket(&mut config, "");
    let s3 = &config.storage.s3;
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(s3.endpoint.clone().expect("endpoint"))
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_access_key_id(&s3.access_key_id)
        .with_secret_access_key(s3.secret_access_key.expose())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .expect("test bucket client")
}

/// A running server with its data.
pub struct TestServer {
    pub server: Option<berth::RunningServer>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub database_url: Option<String>,
    /// The S3 key prefix of this server's blobs (S3 backends).
    pub s3_prefix: String,
}

/// A fresh PostgreSQL database for one test.
pub async fn fresh_postgres_database() -> String {
    let admin = std::env::var("BERTH_TEST_POSTGRES_URL").expect(
        "BERTH_TEST_POSTGRES_URL is not set: run the suite with scripts/test.sh, which starts PostgreSQL",
    );
    let name = format!("berth_test_{}", uuid_like());
    let pool = sqlx_admin(&admin).await;
    sqlx_exec(&pool, &format!("CREATE DATABASE {name}")).await;
    // Swap the database name in the URL (path part before any '?').
    let (base, query) = admin
        .split_once('?')
        .map(|(b, q)| (b, Some(q)))
        .unwrap_or((&admin, None));
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos, std::process::id())
}

async fn sqlx_admin(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect to the test PostgreSQL server")
}

async fn sqlx_exec(pool: &sqlx::PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.expect(sql);
}

impl TestServer {
    /// Start with default settings.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Start with settings adjusted by `adjust`.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut t = Self::unstarted(backend).await;
        t.boot(adjust).await;
        t
    }

    /// Its data (directory, database, bucket prefix) without a server yet:
    /// `restart` starts one.
    pub async fn unstarted(backend: Backend) -> TestServer {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres | Backend::PostgresS3 => Some(fresh_postgres_database().await),
        };
        TestServer {
            server: None,
            base: String::new(),
            client: client_as("admin", ADMIN_PASSWORD),
            dir,
            backend,
            database_url,
            s3_prefix: format!("test-{}", uuid_like()),
        }
    }

    /// Another server on this one's database (and S3 prefix), with its own
    /// data directory and settings adjusted by `adjust`: a second node.
    pub async fn join(&self, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut t = TestServer {
            server: None,
            base: String::new(),
            client: client_as("admin", ADMIN_PASSWORD),
            dir: tempfile::tempdir().expect("tempdir"),
            backend: self.backend,
            database_url: self.database_url.clone(),
            s3_prefix: self.s3_prefix.clone(),
        };
        t.boot(adjust).await;
        t
    }

    pub fn config(&self) -> Config {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: self.dir.path().to_path_buf(),
            pull_flush_secs: 3600,
            shutdown_grace_secs: 5,
            admin_password: Some(berth::config::Secret::new(ADMIN_PASSWORD)),
            ..Config::default()
        };
        config.database.url = self.database_url.as_deref().map(berth::config::Secret::new);
        // A small space reserve: every test server writes one.
        config.storage.reserve_bytes = Some(256 << 10);
        if !self.backend.is_fs() {
            use_test_bucket(&mut config, &self.s3_prefix);
        }
        config
    }

    /// Upload sessions' data left in blob storage.
    pub async fn uploads_left(&self) -> usize {
        self.registry()
            .blobs()
            .list_uploads()
            .await
            .expect("list uploads")
            .len()
    }

    /// Bytes held by upload sessions' data in blob storage.
    pub async fn uploads_bytes(&self) -> u64 {
        let blobs = self.registry().blobs();
        let mut total = 0;
        for (id, _) in blobs.list_uploads().await.expect("list uploads") {
            total += blobs.upload_size(&id).await.ok().flatten().unwrap_or(0);
        }
        total
    }

    async fn boot(&mut self, adjust: impl FnOnce(&mut Config)) {
        let mut config = self.config();
        adjust(&mut config);
        let server = berth::start(config).await.expect("server starts");
        self.base = format!("http://{}", server.addr());
        self.server = Some(server);
    }

    /// Stop gracefully and start again on the same data.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Stop gracefully and start again with settings adjusted by `adjust`.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
        self.boot(adjust).await;
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn directory(&self) -> &berth_core::Directory {
        self.server.as_ref().expect("running").directory()
    }

    pub fn registry(&self) -> &berth_core::Registry {
        self.server.as_ref().expect("running").registry()
    }

    /// A JSON request to the management API as the platform administrator:
    /// the status and the body (JSON, or the text as a JSON string).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        self.api_as(&self.client, method, path, body).await
    }

    /// A JSON request to the management API with `client`'s credentials.
    pub async fn api_as(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = client.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub fn collector(&self) -> &berth_core::Collector {
        self.server.as_ref().expect("running").collector()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn head(&self, path: &str) -> Response {
        self.client
            .head(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Resolve a Location header (relative or absolute) into a full URL.
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http") {
            location.to_owned()
        } else {
            self.url(location)
        }
    }

    /// Open an upload session; returns its full location URL.
    pub async fn start_upload(&self, repo: &str) -> String {
        self.start_upload_as(&self.client, repo).await
    }

    /// Open an upload session as `client`; returns its full location URL.
    pub async fn start_upload_as(&self, client: &reqwest::Client, repo: &str) -> String {
        let r = client
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "start upload");
        self.resolve(&header(&r, "location"))
    }

    /// Push a blob monolithically (POST then PUT); returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        self.push_blob_as(&self.client, repo, data).await
    }

    /// Push a blob monolithically as `client`; returns its digest.
    pub async fn push_blob_as(&self, client: &reqwest::Client, repo: &str, data: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(data));
        let loc = self.start_upload_as(client, repo).await;
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = client
            .put(format!("{loc}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("put");
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "finish upload: {}",
            r.text().await.unwrap_or_default()
        );
        digest
    }

    /// Push a manifest; returns the response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.put_manifest_as(&self.client, repo, reference, media_type, body)
            .await
    }

    /// Push a manifest as `client`; returns the response.
    pub async fn put_manifest_as(
        &self,
        client: &reqwest::Client,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        client
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("put manifest")
    }

    /// Push a config and one layer plus an OCI image manifest tagged `tag`;
    /// returns (manifest digest, manifest bytes).
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, Vec<u8>) {
        self.push_image_as(&self.client, repo, tag, layer).await
    }

    /// [`TestServer::push_image`] as `client`.
    pub async fn push_image_as(
        &self,
        client: &reqwest::Client,
        repo: &str,
        tag: &str,
        layer: &[u8],
    ) -> (String, Vec<u8>) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","layer":"{}"}}"#,
            sha256_hex(layer)
        );
        let config_digest = self.push_blob_as(client, repo, config.as_bytes()).await;
        let layer_digest = self.push_blob_as(client, repo, layer).await;
        let manifest = image_manifest(
            &config_digest,
            config.len(),
            &[(layer_digest, layer.len())],
            None,
        );
        let r = self
            .put_manifest_as(client, repo, tag, OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "push manifest: {}",
            r.text().await.unwrap_or_default()
        );
        (format!("sha256:{}", sha256_hex(&manifest)), manifest)
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// An OCI image manifest referencing the given config and layers.
pub fn image_manifest(
    config: &str,
    config_size: usize,
    layers: &[(String, usize)],
    subject: Option<(&str, usize)>,
) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": OCI_LAYER, "digest": d, "size": s}))
        .collect();
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": config_size},
        "layers": layers,
    });
    if let Some((d, s)) = subject {
        m["subject"] = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": s});
    }
    serde_json::to_vec_pretty(&m).expect("json")
}

/// A manifest GET of an OCI image as `client`: the status and the body.
pub async fn pull_manifest(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    reference: &str,
) -> (reqwest::StatusCode, String) {
    let r = client
        .get(t.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The actions of the latest 100 audit entries, as the platform admin
/// sees them.
pub async fn audit_actions(t: &TestServer) -> Vec<String> {
    let (_, audit) = t
        .api(Method::GET, "/api/v1/audit-log?per_page=100", None)
        .await;
    audit["items"]
        .as_array()
        .expect("audit items")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name} in {:?}", r.headers()))
        .to_str()
        .expect("ascii header")
        .to_owned()
}

/// The `docker-content-digest` header, empty when there is none (for
/// polling answers that may be errors or tag lists).
pub fn digest_header(r: &Response) -> String {
    r.headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Assert an OCI error response with `status` and `code`.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) {
    let got_status = r.status();
    assert_eq!(
        r.headers()
            .get("docker-distribution-api-version")
            .map(|v| v.as_bytes()),
        Some(&b"registry/2.0"[..])
    );
    let text = r.text().await.expect("body");
    assert_eq!(got_status, status, "body: {text}");
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(v["errors"][0]["code"], code, "body: {text}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message: {text}"
    );
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// A connection of its own to a test server's database, as another
/// process would have.
enum Elsewhere {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Elsewhere {
    async fn connect(t: &TestServer) -> Elsewhere {
        match &t.database_url {
            Some(url) => Elsewhere::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .expect("connect"),
            ),
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(t.data_dir().join("berth.db"))
                    .busy_timeout(std::time::Duration::from_secs(10));
                Elsewhere::Sqlite(
                    sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(options)
                        .await
                        .expect("connect"),
                )
            }
        }
    }
}

/// Run `sql` on the server's database from a connection of its own, as
/// another process would (a change no code path of Berth made).
pub async fn sql_elsewhere(t: &TestServer, sql: &str) {
    match Elsewhere::connect(t).await {
        Elsewhere::Postgres(pool) => {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        Elsewhere::Sqlite(pool) => {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
    }
}

/// The first column of the first row `sql` selects, as text, read from
/// the server's database by a connection of its own.
pub async fn sql_text(t: &TestServer, sql: &str) -> String {
    let (v,): (String,) = match Elsewhere::connect(t).await {
        Elsewhere::Postgres(pool) => sqlx::query_as(sql).fetch_one(&pool).await.expect(sql),
        Elsewhere::Sqlite(pool) => sqlx::query_as(sql).fetch_one(&pool).await.expect(sql),
    };
    v
}

/// Run each listed test against both backends.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
    // The same, plus PostgreSQL with S3 blob storage.
    (s3: $($name:ident),* $(,)?) => {
        backend_tests!($($name),*);
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::PostgresS3).await;
                }
            )*
        }
    };
}
