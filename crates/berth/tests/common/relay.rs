//! A TCP relay the tests stop and start again on the same port: a storage
//! service (Garage) going away and coming back.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A relay from `listen` to `target`; dropping it closes every connection.
pub struct Relay {
    tasks: JoinSet<()>,
}

impl Relay {
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> Relay {
        let listener = TcpListener::bind(listen).await.expect("bind relay");
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { tasks }
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
