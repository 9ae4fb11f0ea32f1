//! Password hashing (argon2id) and generation. Hashing and verification
//! are deliberately slow and each holds 19 MiB, so they run on a pool of
//! threads sized to the cores, with a short queue: a flood of logins (with
//! unknown names, say) can take no more than the pool, and past the queue
//! a check is refused at once ([`Busy`]) instead of stalling everyone
//! behind one thread. Unknown names cost no check at all, only the wait a
//! check would have taken. Each buffer is above glibc's mmap threshold
//! (set at start by the binary), so it goes back to the system when freed.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Shortest password accepted when a person chooses one.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Checks that may wait for a thread, per thread of the pool.
const QUEUE_PER_THREAD: usize = 4;

/// The pool is full: too many password checks are running or waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks are running; retry in a second")]
pub struct Busy;

type Job = Box<dyn FnOnce() + Send>;

/// The pool's queue; its threads start on first use.
fn pool() -> &'static SyncSender<Job> {
    static POOL: OnceLock<SyncSender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let (tx, rx) = mpsc::sync_channel::<Job>(threads * QUEUE_PER_THREAD);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("berth-passwords-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(p) => p.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password thread");
            }
        }
        tx
    })
}

/// Run `f` on the pool and wait for its result; [`Busy`] at once when the
/// queue is full.
async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(f());
    });
    match pool().try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(Busy),
        Err(TrySendError::Disconnected(_)) => {
            tracing::error!("the password threads are gone");
            return Err(Busy);
        }
    }
    result.await.map_err(|_| Busy)
}

/// Hash a password with argon2id and a random salt. Setting a password
/// waits (up to 10 s) for room on the pool rather than failing at once.
pub async fn hash(password: &str) -> Result<String, String> {
    for _ in 0..100 {
        let password = password.to_owned();
        let hashed = on_pool(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        })
        .await;
        match hashed {
            Ok(result) => return result,
            Err(Busy) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Err(Busy.to_string())
}

/// How long a verification took lately, in microseconds (a moving
/// average; a first guess until one has run).
static VERIFY_MICROS: AtomicU64 = AtomicU64::new(30_000);

/// Check a password against a stored hash (constant-time comparison
/// inside). With no hash (an unknown name), nothing is computed: the
/// answer waits as long as a verification lately took, so unknown names
/// take as long as wrong passwords and a flood of them costs no CPU.
/// [`Busy`] when the pool has no room.
pub async fn verify(password: &str, stored: Option<&str>) -> Result<bool, Busy> {
    let Some(stored) = stored.map(str::to_owned) else {
        let micros = VERIFY_MICROS.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_micros(micros)).await;
        return Ok(false);
    };
    let password = password.to_owned();
    on_pool(move || {
        let started = Instant::now();
        let ok = PasswordHash::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        let took = started.elapsed().as_micros().min(10_000_000) as u64;
        let _ = VERIFY_MICROS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
            Some((avg * 7 + took) / 8)
        });
        ok
    })
    .await
}

/// A random password of 24 letters and digits.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 24];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A random secret of `bytes` bytes from the operating system, base64url
/// without padding (for API tokens, session cookies and CSRF tokens).
pub fn random_secret(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// How a random secret (an API token, a session cookie) is stored: its
/// SHA-256 in hex. Such secrets are long and random, so a fast hash is
/// enough; the secret itself is never stored.
pub(crate) fn secret_hash(secret: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse").await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(verify("correct horse", Some(&h)).await, Ok(true));
        assert_eq!(verify("wrong horse", Some(&h)).await, Ok(false));
        assert_eq!(verify("correct horse", None).await, Ok(false));
        assert_eq!(verify("x", Some("not a hash")).await, Ok(false));
        assert_ne!(
            hash("same").await.expect("h"),
            hash("same").await.expect("h"),
            "salted"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_is_refused_at_once_past_the_queue() {
        let h = hash("correct horse").await.expect("hash");
        let checks: Vec<_> = (0..200)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { verify("wrong", Some(&h)).await })
            })
            .collect();
        let mut busy = 0;
        for c in checks {
            match c.await.expect("join") {
                Ok(ok) => assert!(!ok),
                Err(Busy) => busy += 1,
            }
        }
        assert!(busy > 0, "200 checks at once overflow a short queue");
        // Once the flood is gone, checks run again.
        assert_eq!(verify("correct horse", Some(&h)).await, Ok(true));
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate();
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate());
    }
}
