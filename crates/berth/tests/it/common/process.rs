//! A `berth serve` process of its own (this build's binary or another
//! release's), for what an in-process server cannot show: its memory, or
//! two builds side by side. Stopped however the test ends.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::relay::free_addr;

pub struct ServeProcess {
    pub child: Child,
    /// `http://host:port`.
    pub base: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `cmd` (`berth serve`, set up for a test's data) on a free loopback
/// address and wait until it is ready.
pub async fn serve_process(mut cmd: Command) -> ServeProcess {
    let addr = free_addr();
    let child = cmd
        .env("BERTH_LISTEN", addr.to_string())
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("berth starts");
    let node = ServeProcess {
        child,
        base: format!("http://{addr}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{}/readyz", node.base))
        .await
        .map_or(true, |r| r.status() != StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "berth did not get ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node
}
