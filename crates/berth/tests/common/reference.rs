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
