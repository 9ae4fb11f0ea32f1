//! Running the real clients (docker, podman, skopeo, buildah, ctr) from tests.

use std::path::Path;
use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::TestServer;

pub async fn try_run(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test.sh installs it): {e}"));
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    child.wait_with_output().await.expect("wait")
}

pub async fn run_full(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let out = try_run(program, args, env, stdin).await;
    assert!(
        out.status.success(),
        "{program} {} failed: {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub async fn run(program: &str, args: &[&str]) -> Output {
    run_full(program, args, &[], None).await
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn host(t: &TestServer) -> String {
    t.base.trim_start_matches("http://").to_owned()
}

pub const ADMIN_CREDS: &str = "admin:test-admin-password";

/// Log docker in to the test server as `user`.
pub async fn docker_login(t: &TestServer, user: &str, password: &str) {
    let out = try_run(
        "docker",
        &["login", &host(t), "-u", user, "--password-stdin"],
        &[],
        Some(password),
    )
    .await;
    assert!(
        out.status.success(),
        "docker login as {user} failed: {}",
        stderr(&out)
    );
}

/// Build a small image with the legacy builder; returns its reference.
pub async fn docker_build(ctx: &Path, reference: &str, files: &[(&str, &str)]) {
    let mut dockerfile = String::from("FROM scratch\n");
    for (name, content) in files {
        std::fs::write(ctx.join(name), content).expect("write");
        dockerfile.push_str(&format!("COPY {name} /{name}\n"));
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("dockerfile");
    let ctx = ctx.to_str().expect("utf8");
    run_full(
        "docker",
        &["build", "-q", "-t", reference, ctx],
        &[("DOCKER_BUILDKIT", "0")],
        None,
    )
    .await;
}

/// podman with storage (vfs), an auth file and a docker configuration of its
/// own under one directory. The docker configuration matters: podman also
/// reads docker's, where a concurrent test's `docker login` may hold an
/// identity token that podman refuses (docs/troubleshooting.md).
pub struct Podman {
    root: String,
    runroot: String,
    docker_config: String,
    /// The auth file `login` writes and pushes and pulls should name.
    pub authfile: String,
}

impl Podman {
    pub fn new(dir: &Path) -> Podman {
        let docker_config = dir.join("docker");
        std::fs::create_dir_all(&docker_config).expect("mkdir");
        std::fs::write(docker_config.join("config.json"), "{}").expect("docker config");
        let s = |p: std::path::PathBuf| p.display().to_string();
        Podman {
            root: s(dir.join("root")),
            runroot: s(dir.join("run")),
            docker_config: s(docker_config),
            authfile: s(dir.join("auth.json")),
        }
    }

    /// Run a podman command on this storage; it must succeed.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--root",
            &self.root,
            "--runroot",
            &self.runroot,
            "--storage-driver",
            "vfs",
        ];
        all.extend_from_slice(args);
        run_full(
            "podman",
            &all,
            &[("DOCKER_CONFIG", &self.docker_config)],
            None,
        )
        .await
    }

    /// `podman login` to `host` as admin with `password` into the auth file.
    pub async fn login(&self, host: &str, password: &str) -> Output {
        self.login_as(host, "admin", password).await
    }

    /// `podman login` to `host` as `user` into the auth file.
    pub async fn login_as(&self, host: &str, user: &str, password: &str) -> Output {
        let args = [
            "login",
            "--tls-verify=false",
            "--authfile",
            &self.authfile,
            "-u",
            user,
            "--password-stdin",
            host,
        ];
        try_run(
            "podman",
            &args,
            &[("DOCKER_CONFIG", &self.docker_config)],
            Some(password),
        )
        .await
    }
}

/// How many layers the docker engine's copy of `reference` has.
pub async fn docker_layers(reference: &str) -> usize {
    let out = run(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            reference,
        ],
    )
    .await;
    stdout(&out).trim().parse().expect("a layer count")
}
