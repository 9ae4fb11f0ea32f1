//! A TCP relay the tests stop and start again on the same port: a storage
//! service (Garage) going away and coming back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A relay from `listen` to `target`; dropping it closes every connection.
pub struct Relay {
    tasks: JoinSet<()>,
    down: Arc<AtomicU64>,
}

impl Relay {
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> Relay {
        let listener = TcpListener::bind(listen).await.expect("bind relay");
        let mut tasks = JoinSet::new();
        let down = Arc::new(AtomicU64::new(0));
        let counter = down.clone();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                conns.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let up = async move {
                        let _ = tokio::io::copy(&mut ri, &mut wo).await;
                        let _ = wo.shutdown().await;
                    };
                    // Bytes from the target back to the client, counted.
                    let back = async move {
                        let mut buf = vec![0u8; 64 << 10];
                        while let Ok(n) = ro.read(&mut buf).await {
                            if n == 0 || wi.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        let _ = wi.shutdown().await;
                    };
                    tokio::join!(up, back);
                });
            }
        });
        Relay { tasks, down }
    }

    /// Bytes the target has sent back through the relay so far.
    pub fn downstream_bytes(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

pub fn garage_addr() -> SocketAddr {
    let endpoint = std::env::var("BERTH_TEST_S3_ENDPOINT")
        .expect("BERTH_TEST_S3_ENDPOINT is not set: run the suite with scripts/test.sh");
    endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("the test endpoint is http://ip:port")
}

/// A free loopback address for a relay.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}
