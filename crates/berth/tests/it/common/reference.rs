//! The reference registry (Debian's `docker-registry`, Distribution 2.8) on
//! a loopback port with its own directory: without authentication, or with
//! Basic authentication from an htpasswd file (bcrypt, made by `htpasswd`).

use std::net::SocketAddr;
use std::time::Duration;

use super::relay::free_addr;

/// A running reference registry; stopped when dropped.
pub struct Reference {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl Reference {
    /// Start one; with `user`, Basic authentication for that user and password.
    pub async fn start(user: Option<(&str, &str)>) -> Reference {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = free_addr();
        let mut auth = String::new();
        if let Some((name, password)) = user {
            let out = std::process::Command::new("htpasswd")
                .args(["-Bbn", name, password])
                .output()
                .expect("htpasswd (apache2-utils) is installed by scripts/test-env.sh");
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, &out.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: reference\n    path: {}\n",
                path.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            dir.path().join("data").display()
        );
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).expect("write config");
        Self::serve(dir, addr).await
    }

    /// Serve the configuration in `dir` on `addr`.
    async fn serve(dir: tempfile::TempDir, addr: SocketAddr) -> Reference {
        let path = dir.path().join("config.yml");
        let child = tokio::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&path)
            .env_remove("AWS_CA_BUNDLE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("docker-registry is installed by scripts/test-env.sh");
        let r = Reference { addr, dir, child };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the reference registry did not start on {addr}");
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop it (SIGKILL) and wait.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Stop it (SIGKILL), keeping its data; start it again with
    /// [`Stopped::start`].
    pub async fn stop_keeping_data(mut self) -> Stopped {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        Stopped {
            addr: self.addr,
            dir: self.dir,
        }
    }
}

/// A stopped reference registry with its data and address.
pub struct Stopped {
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Stopped {
    /// Serve the same data on the same address again.
    pub async fn start(self) -> Reference {
        Reference::serve(self.dir, self.addr).await
    }
}

/// An OCI client of a registry, with Basic or token credentials.
pub fn client_of(url: &str, user: Option<(&str, &str)>) -> berth_client::RegistryClient {
    berth_client::RegistryClient::new(
        url,
        berth_client::ClientOptions {
            credentials: user.map(|(u, p)| berth_client::Credentials {
                username: u.into(),
                password: p.into(),
            }),
            ..Default::default()
        },
    )
    .expect("client")
}

/// Push a config and one layer plus an OCI manifest tagged `tag` with the
/// client. Returns the manifest's digest.
pub async fn push_remote(
    c: &berth_client::RegistryClient,
    repo: &str,
    tag: &str,
    layer: &[u8],
) -> String {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","seed":"{}"}}"#,
        super::sha256(layer)
    );
    push_remote_image(c, repo, tag, config.as_bytes(), layer).await
}

/// Push `config` and `layer` plus an OCI manifest tagged `tag`.
pub async fn push_remote_image(
    c: &berth_client::RegistryClient,
    repo: &str,
    tag: &str,
    config: &[u8],
    layer: &[u8],
) -> String {
    let mut blobs = Vec::new();
    for blob in [config, layer] {
        let d: berth_oci::Digest = super::sha256(blob).parse().expect("digest");
        let body = bytes::Bytes::copy_from_slice(blob);
        c.push_blob(
            repo,
            &d,
            blob.len() as u64,
            futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) }),
        )
        .await
        .expect("push blob");
        blobs.push((d.to_string(), blob.len()));
    }
    let manifest = super::image_manifest(&blobs[0].0, blobs[0].1, &blobs[1..], None);
    c.put_manifest(repo, tag, super::OCI_MANIFEST, bytes::Bytes::from(manifest))
        .await
        .expect("put manifest")
        .to_string()
}
