//! Bandwidth limits on byte streams: the external clients' download cap
//! (in the /v2 surface) and replication rules' limit per task.

use std::time::Duration;

use futures_util::{Stream, StreamExt};

/// Read size for capped streams: small, so the rate is smooth.
pub const THROTTLED_BUFFER: usize = 64 << 10;

/// A stream that yields at most `rate` bytes per second on average: after
/// each item it waits until the bytes yielded so far are due. Items of any
/// `Result` type whose `Ok` is bytes; errors pass at once.
pub fn throttled<S, E>(stream: S, rate: u64) -> impl Stream<Item = S::Item>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    let start = tokio::time::Instant::now();
    let rate = rate.max(1);
    futures_util::stream::unfold((stream, 0u64), move |(mut s, sent)| async move {
        let item = s.next().await?;
        let sent = sent + item.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        tokio::time::sleep_until(due).await;
        Some((item, (s, sent)))
    })
}
