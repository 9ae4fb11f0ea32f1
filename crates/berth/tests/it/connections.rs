//! Slow and hostile clients over raw TCP: request headers that never end,
//! request bodies that stop arriving (and slow ones that do not), and the
//! bounds on connections open at once, overall and per client address.
//! These are properties of the HTTP layer, the same for both databases, so
//! they run on the embedded default only.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn addr(t: &TestServer) -> SocketAddr {
    t.server.as_ref().expect("running").addr()
}

/// Connect from a given loopback address (127.0.0.x are all this machine).
async fn connect_from(t: &TestServer, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback address");
    socket.connect(addr(t)).await.expect("connect")
}

/// Read until the server closes the connection (or `limit` passes);
/// returns what was read and how long it took.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the connection was still open after {limit:?}; read so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

fn basic() -> String {
    use base64::Engine;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    format!("Basic {creds}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_never_end_are_cut_off() {
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.connections.header_read_timeout_secs = 1;
    })
    .await;
    let mut s = TcpStream::connect(addr(&t)).await.expect("connect");
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let (_, took) = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    // A connection that sends nothing at all is closed as well.
    let mut s = TcpStream::connect(addr(&t)).await.expect("connect");
    read_to_close(&mut s, Duration::from_secs(10)).await;
    // Ordinary requests are unaffected.
    assert_eq!(t.get("/v2/").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_fails_but_a_slow_one_does_not() {
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.connections.body_idle_timeout_secs = 1;
    })
    .await;
    // A chunk that announces 1000 bytes, sends 10 and stops.
    let location = t.start_upload("slow/app").await;
    let path = location.strip_prefix(&t.base).expect("own url").to_owned();
    let mut s = TcpStream::connect(addr(&t)).await.expect("connect");
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n",
        basic()
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&[7u8; 10]).await.expect("some body");
    let (answer, took) = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "answered: {answer}");
    assert!(
        answer.contains("BLOB_UPLOAD_INVALID") && answer.contains("idle"),
        "{answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");

    // A body that keeps arriving, slower than the idle timeout in total,
    // is never cut off: 12 pieces, 300 ms apart (3.6 s in all).
    let data: Vec<u8> = (0..1200u32).map(|i| (i % 251) as u8).collect();
    let location = t.start_upload("slow/app").await;
    let path = location.strip_prefix(&t.base).expect("own url").to_owned();
    let mut s = TcpStream::connect(addr(&t)).await.expect("connect");
    let head = format!(
        "PUT {path}?digest={} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sha256(&data),
        basic(),
        data.len()
    );
    s.write_all(head.as_bytes()).await.expect("head");
    for piece in data.chunks(100) {
        s.write_all(piece).await.expect("piece");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (answer, _) = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "answered: {answer}");
    let r = t
        .get(&format!("/v2/slow/app/blobs/{}", sha256(&data)))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), &data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_per_client_and_overall() {
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.connections.max_connections_per_client = 3;
        c.connections.max_connections = 5;
    })
    .await;
    // Three idle connections from 127.0.0.2 are its share.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(&t, [127, 0, 0, 2]).await);
    }
    // Give the server a moment to count them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = connect_from(&t, [127, 0, 0, 2]).await;
    fourth
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok();
    let (answer, _) = read_to_close(&mut fourth, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "answered: {answer}");
    assert!(answer.contains("TOOMANYREQUESTS"), "{answer}");
    // Another client still gets in, up to the overall bound of five.
    let mut other = Vec::new();
    for _ in 0..2 {
        other.push(connect_from(&t, [127, 0, 0, 3]).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sixth = connect_from(&t, [127, 0, 0, 4]).await;
    let (answer, _) = read_to_close(&mut sixth, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "answered: {answer}");
    assert!(answer.contains("UNAVAILABLE"), "{answer}");
    // Closing connections gives their places back.
    held.clear();
    other.clear();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = connect_from(&t, [127, 0, 0, 2]).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok();
        let (answer, _) = read_to_close(&mut s, Duration::from_secs(5)).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "places not given back: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
