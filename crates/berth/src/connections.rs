//! What a connection may cost: bounds on how many are open at once
//! (overall and per client address), and on how long a request body may
//! stall. (How long request headers may take is hyper's
//! `header_read_timeout`, set where the server is built.)
//!
//! A connection past a bound is answered at once with a short plain-HTTP
//! error (`503`, or `429` for one client's share) and closed, so a flood of
//! idle or half-open connections costs a bounded amount of memory and file
//! descriptors, and clients are told why instead of seeing a reset.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum_server::accept::Accept;
use berth_core::zones::Cidr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The connection bounds.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    /// Most connections open at once (0: no bound).
    max_total: usize,
    /// Most connections open at once from one client address (0: no bound).
    max_per_client: usize,
    /// Peers exempt from the per-client bound (trusted reverse proxies,
    /// which carry many clients' connections).
    exempt: Vec<Cidr>,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: usize, max_per_client: usize, exempt: Vec<Cidr>) -> Self {
        ConnectionLimits {
            max_total,
            max_per_client,
            exempt,
            open: Mutex::new(Open::default()),
        }
    }

    /// Count a new connection from `ip`, or say which bound it would cross.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if self.max_total > 0 && open.total >= self.max_total {
            return Err(Refusal::Total(self.max_total));
        }
        let limited = self.max_per_client > 0 && !self.exempt.iter().any(|c| c.contains(ip));
        let mine = open.per_client.get(&ip).copied().unwrap_or(0);
        if limited && mine >= self.max_per_client {
            return Err(Refusal::PerClient(self.max_per_client));
        }
        open.total += 1;
        *open.per_client.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            limits: Arc::clone(self),
            ip,
        })
    }
}

/// A bound a refused connection would have crossed.
enum Refusal {
    Total(usize),
    PerClient(usize),
}

impl Refusal {
    /// A complete HTTP/1.1 response that closes the connection, with an
    /// OCI error body (most callers are registry clients).
    fn response(&self) -> Vec<u8> {
        let (status, code, message, retry) = match self {
            Refusal::Total(n) => (
                "503 Service Unavailable",
                "UNAVAILABLE",
                format!("the server has {n} connections open, its limit; retry shortly"),
                5,
            ),
            Refusal::PerClient(n) => (
                "429 Too Many Requests",
                "TOOMANYREQUESTS",
                format!("this client address has {n} connections open, its limit; close some or retry shortly"),
                1,
            ),
        };
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: {retry}\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// An open connection's place in the counts, given back when it closes.
#[derive(Debug)]
struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(n) = open.per_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.ip);
            }
        }
    }
}

/// Accepts a TCP connection if the bounds allow (setting `TCP_NODELAY`),
/// and refuses it with a short answer otherwise. `plain` says whether the
/// connection speaks plain HTTP (a TLS connection is refused by closing it:
/// a plain answer would be noise to a TLS client).
///
/// It also waits, at most `first_byte`, for the client to send anything:
/// HTTP/1 and HTTP/2 are told apart by the first bytes before hyper sees
/// the connection, so hyper's header read timeout cannot cover a client
/// that connects and says nothing.
#[derive(Debug, Clone)]
pub(crate) struct LimitAcceptor {
    limits: Arc<ConnectionLimits>,
    plain: bool,
    first_byte: Duration,
}

impl LimitAcceptor {
    pub(crate) fn new(limits: Arc<ConnectionLimits>, plain: bool, first_byte: Duration) -> Self {
        LimitAcceptor {
            limits,
            plain,
            first_byte,
        }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Limited;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Limited, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let limits = Arc::clone(&self.limits);
        let plain = self.plain;
        let first_byte = self.first_byte;
        Box::pin(async move {
            let ip = stream.peer_addr()?.ip();
            match limits.admit(ip) {
                Ok(slot) => {
                    // Without TCP_NODELAY the last small write of a response
                    // could wait for the client's delayed ACK (40 ms).
                    stream.set_nodelay(true)?;
                    let mut first = [0u8; 1];
                    if tokio::time::timeout(first_byte, stream.peek(&mut first))
                        .await
                        .is_err()
                    {
                        tracing::debug!(client = %ip, "connection closed: nothing sent");
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client sent nothing",
                        ));
                    }
                    Ok((
                        Limited {
                            stream,
                            _slot: slot,
                        },
                        service,
                    ))
                }
                Err(refusal) => {
                    tracing::debug!(client = %ip, "connection refused: over a connection limit");
                    if plain {
                        tokio::spawn(refuse(stream, refusal.response()));
                    }
                    Err(io::Error::other("over a connection limit"))
                }
            }
        })
    }
}

/// Answer a refused connection and close it. The request is read (and
/// dropped) for up to a second first, so that closing with unread data does
/// not reset the connection before the client has read the answer.
async fn refuse(mut stream: TcpStream, response: Vec<u8>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&response).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// A connection counted against the bounds while it is open.
#[derive(Debug)]
pub(crate) struct Limited {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that fails once no data has arrived for `idle`: a client
/// that stops sending mid-body does not hold its connection (and an upload's
/// lock) forever, while a large push over a slow link, which keeps sending,
/// is never cut off. The clock starts when the handler first reads.
pub(crate) struct IdleTimeoutBody {
    inner: axum::body::Body,
    idle: Duration,
    /// Made the first time the handler waits, so that requests whose body
    /// is never waited for (most GETs) allocate no timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the handler is waiting for data (the clock runs only then,
    /// so a handler slow to take a frame is not blamed on the client).
    waiting: bool,
}

impl IdleTimeoutBody {
    pub(crate) fn new(inner: axum::body::Body, idle: Duration) -> Self {
        IdleTimeoutBody {
            inner,
            idle,
            timer: None,
            waiting: false,
        }
    }
}

impl http_body::Body for IdleTimeoutBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.idle;
                let timer = match &mut this.timer {
                    Some(t) => {
                        if !this.waiting {
                            t.as_mut().reset(deadline);
                        }
                        t
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                this.waiting = true;
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(axum::Error::new(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no data arrived for {} s (the body idle timeout)",
                            this.idle.as_secs()
                        ),
                    )))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Raise the soft limit on open files to the hard limit, as servers (and
/// Go's runtime) do: the default soft limit of 1024 would stop accepting
/// connections well before `max_connections`.
pub(crate) fn raise_open_file_limit() {
    #[cfg(target_os = "linux")]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct
        // passed by reference, which lives on this stack frame.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && limit.rlim_cur < limit.rlim_max
            {
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
}
