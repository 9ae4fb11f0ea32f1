//! Berth's own container image: built by scripts/image.sh (FROM scratch,
//! nothing downloaded), run by the docker engine with host networking, and
//! used by docker as a registry.

use std::time::{Duration, Instant};

use crate::common::cli::*;
use crate::common::*;
use reqwest::StatusCode;

/// Removes the container and the image however the test ends.
struct Cleanup {
    container: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_berth_as_an_unprivileged_user() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let tag = format!("berth-image-test:{port}");
    let name = format!("berth-image-test-{port}");
    let _cleanup = Cleanup {
        container: name.clone(),
        image: tag.clone(),
    };
    let built = run_full(
        &format!("{root}/scripts/image.sh"),
        &["--binary", env!("CARGO_BIN_EXE_berth"), "--tag", &tag],
        &[],
        None,
    )
    .await;
    assert_eq!(stdout(&built).trim(), tag);
    let user = stdout(
        &run(
            "docker",
            &["image", "inspect", "--format", "{{.Config.User}}", &tag],
        )
        .await,
    );
    assert_eq!(user.trim(), "65532:65532");
    run(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "host",
            "-e",
            &format!("BERTH_LISTEN=127.0.0.1:{port}"),
            "-e",
            &format!("BERTH_ADMIN_PASSWORD={ADMIN_PASSWORD}"),
            &tag,
        ],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = anonymous_client().get(format!("{base}/v2/")).send().await {
            if r.status() == StatusCode::UNAUTHORIZED {
                break;
            }
        }
        if Instant::now() > deadline {
            let logs = try_run("docker", &["logs", &name], &[], None).await;
            panic!("the container did not serve: {}", stderr(&logs));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A push and a pull through it, into its own /data.
    let host = format!("127.0.0.1:{port}");
    let ctx = tempfile::tempdir().expect("ctx");
    let image = format!("{host}/library/inside:v1");
    docker_build(
        ctx.path(),
        &image,
        &[("hello.txt", "from the image test\n")],
    )
    .await;
    let login = try_run(
        "docker",
        &["login", &host, "-u", "admin", "--password-stdin"],
        &[],
        Some(ADMIN_PASSWORD),
    )
    .await;
    assert!(login.status.success(), "{}", stderr(&login));
    run("docker", &["push", &image]).await;
    run("docker", &["rmi", &image]).await;
    run("docker", &["pull", &image]).await;
    let r = client_as("admin", ADMIN_PASSWORD)
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), StatusCode::OK);
    run("docker", &["logout", &host]).await;
    run("docker", &["rmi", "-f", &image]).await;
}
