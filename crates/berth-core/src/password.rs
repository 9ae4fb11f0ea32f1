//! Password hashing (argon2id) and generation. Hashing and verification are
//! deliberately slow and each holds 19 MiB; they run one at a time on one
//! dedicated thread. So concurrent logins cannot multiply that memory, and
//! the allocator keeps (and reuses) it in that thread's arena only, instead
//! of leaving 19 MiB behind in the arena of every thread that ever verified
//! a password (glibc raises its mmap threshold after the first free).

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::{mpsc, Mutex, OnceLock};

/// Shortest password accepted when a person chooses one.
pub const MIN_PASSWORD_LEN: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// Run `f` on the password thread and wait for its result.
async fn on_password_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    static JOBS: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("berth-passwords".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the password thread");
        }
        Mutex::new(tx)
    });
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(f());
    });
    jobs.lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job)
        .map_err(|_| "the password thread is gone".to_owned())?;
    result
        .await
        .map_err(|_| "the password thread dropped a job".to_owned())
}

/// Hash a password with argon2id and a random salt.
pub async fn hash(password: &str) -> Result<String, String> {
    let password = password.to_owned();
    on_password_thread(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await?
}

/// Check a password against a stored hash (constant-time comparison inside).
/// With no hash, a dummy verification runs so that unknown names take as
/// long as wrong passwords.
pub async fn verify(password: &str, stored: Option<&str>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Yw7sBPSb0oWN6z2iF8Itc8Ns1e3ZnTpPvuH7XfXVZZQ";
    let password = password.to_owned();
    let stored = stored.map(str::to_owned);
    on_password_thread(move || {
        let known = stored.is_some();
        let text = stored.unwrap_or_else(|| DUMMY.to_owned());
        let Ok(parsed) = PasswordHash::new(&text) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && known
    })
    .await
    .unwrap_or(false)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse").await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&h)).await);
        assert!(!verify("wrong horse", Some(&h)).await);
        assert!(!verify("correct horse", None).await);
        assert!(!verify("x", Some("not a hash")).await);
        assert_ne!(
            hash("same").await.expect("h"),
            hash("same").await.expect("h"),
            "salted"
        );
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate();
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate());
    }
}
