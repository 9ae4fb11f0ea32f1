//! Values sealed at rest with a key from the configuration
//! (ChaCha20-Poly1305 from `ring`, a random nonce per value, the owner's
//! name as associated data so a sealed value cannot be moved to another
//! row). The key never touches the database.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "v1:";

/// Marks a value sealed in a column that held values in clear before
/// (webhook secrets, the token signing key), so both read unambiguously.
const MARK: &str = "sealed:";

/// Seals and opens values: with the configured key, and opens values
/// sealed with earlier keys while `encryption_key` is being rotated.
pub struct Sealer {
    key: LessSafeKey,
    previous: Vec<LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(<key>, {} previous)", self.previous.len())
    }
}

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The configured key is too short.
    #[error("the encryption key must be at least 32 characters")]
    WeakKey,
    /// The value was sealed with another key, or altered.
    #[error(
        "a sealed value does not open with the configured encryption key (was the key changed? list the old one in previous_encryption_keys)"
    )]
    Open,
    /// The system's random source failed.
    #[error("no randomness for a nonce")]
    Random,
}

/// A value read from a column that holds sealed values (and, from before
/// a key was configured, values in clear).
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// Sealed with the current key.
    Current(String),
    /// Sealed with a previous key, or stored in clear: seal it again.
    Stale(String),
}

impl Opened {
    /// The value.
    pub fn value(&self) -> &str {
        match self {
            Opened::Current(v) | Opened::Stale(v) => v,
        }
    }

    /// Whether it should be sealed again with the current key.
    pub fn is_stale(&self) -> bool {
        matches!(self, Opened::Stale(_))
    }
}

fn derive(secret: &str) -> Result<LessSafeKey, SealError> {
    if secret.len() < 32 {
        return Err(SealError::WeakKey);
    }
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"berth sealed values");
    let prk = salt.extract(secret.as_bytes());
    let okm = prk
        .expand(&[b"chacha20-poly1305"], &CHACHA20_POLY1305)
        .map_err(|_| SealError::WeakKey)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn open_with(key: &LessSafeKey, sealed: &str, owner: &str) -> Result<String, SealError> {
    let raw = sealed
        .strip_prefix(PREFIX)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or(SealError::Open)?;
    if raw.len() < NONCE_LEN {
        return Err(SealError::Open);
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
    let mut data = rest.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut data)
        .map_err(|_| SealError::Open)?;
    String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)
}

impl Sealer {
    /// A sealer whose key is derived (HKDF-SHA256) from `secret`.
    pub fn new(secret: &str) -> Result<Self, SealError> {
        Ok(Sealer {
            key: derive(secret)?,
            previous: Vec::new(),
            rng: SystemRandom::new(),
        })
    }

    /// Also open values sealed with these earlier keys (rotation: they
    /// are sealed again with the current key when read at start).
    pub fn with_previous<'a>(
        mut self,
        previous: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, SealError> {
        for p in previous {
            self.previous.push(derive(p)?);
        }
        Ok(self)
    }

    /// Seal `plain`, bound to `owner`.
    pub fn seal(&self, plain: &str, owner: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut data,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// Open a value sealed for `owner` (with the current key or a
    /// previous one).
    pub fn open(&self, sealed: &str, owner: &str) -> Result<String, SealError> {
        self.open_checked(sealed, owner).map(|o| match o {
            Opened::Current(v) | Opened::Stale(v) => v,
        })
    }

    /// Open a value sealed for `owner`, saying whether it needs sealing
    /// again with the current key.
    pub fn open_checked(&self, sealed: &str, owner: &str) -> Result<Opened, SealError> {
        if let Ok(v) = open_with(&self.key, sealed, owner) {
            return Ok(Opened::Current(v));
        }
        self.previous
            .iter()
            .find_map(|k| open_with(k, sealed, owner).ok())
            .map(Opened::Stale)
            .ok_or(SealError::Open)
    }

    /// Seal a value for a column that also holds values in clear from
    /// before a key was configured (marked, so both read unambiguously).
    pub fn seal_marked(&self, plain: &str, owner: &str) -> Result<String, SealError> {
        Ok(format!("{MARK}{}", self.seal(plain, owner)?))
    }
}

/// Whether a stored value of such a column is sealed.
pub fn is_marked(stored: &str) -> bool {
    stored.starts_with(MARK)
}

/// Read a value of a column that holds sealed values and, from before a
/// key was configured, values in clear: `Stale` when it should be sealed
/// (again) with the current key. A sealed value without a sealer, or one
/// no configured key opens, is an error.
pub fn open_marked(
    sealer: Option<&Sealer>,
    stored: &str,
    owner: &str,
) -> Result<Opened, SealError> {
    match (stored.strip_prefix(MARK), sealer) {
        (Some(sealed), Some(s)) => s.open_checked(sealed, owner),
        (Some(_), None) => Err(SealError::Open),
        (None, Some(_)) => Ok(Opened::Stale(stored.to_owned())),
        (None, None) => Ok(Opened::Current(stored.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_owner() {
        let s = Sealer::new("0123456789abcdef0123456789abcdef").unwrap();
        let sealed = s.seal("hunter2-password", "dockerhub").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            s.seal("hunter2-password", "dockerhub").unwrap(),
            "a nonce per value"
        );
        assert_eq!(s.open(&sealed, "dockerhub").unwrap(), "hunter2-password");
        assert!(s.open(&sealed, "other").is_err(), "bound to its owner");
        let other = Sealer::new("another key of thirty-two characters").unwrap();
        assert!(other.open(&sealed, "dockerhub").is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(s.open(&tampered, "dockerhub").is_err());
        assert!(Sealer::new("short").is_err());
    }

    #[test]
    fn rotation_opens_old_values_and_marks_them_stale() {
        let old = Sealer::new("the old key of thirty-two characters").unwrap();
        let sealed = old.seal_marked("webhook secret", "w").unwrap();
        assert!(is_marked(&sealed) && !sealed.contains("webhook secret"));
        let new = Sealer::new("the new key of thirty-two characters").unwrap();
        assert!(
            open_marked(Some(&new), &sealed, "w").is_err(),
            "old key not listed"
        );
        let rotating = Sealer::new("the new key of thirty-two characters")
            .unwrap()
            .with_previous(["the old key of thirty-two characters"])
            .unwrap();
        let opened = open_marked(Some(&rotating), &sealed, "w").unwrap();
        assert_eq!(opened, Opened::Stale("webhook secret".into()));
        let resealed = rotating.seal_marked(opened.value(), "w").unwrap();
        assert_eq!(
            open_marked(Some(&new), &resealed, "w").unwrap(),
            Opened::Current("webhook secret".into())
        );
        // Clear values from before a key: stale with a key, as they are without.
        assert_eq!(
            open_marked(Some(&new), "in clear", "w").unwrap(),
            Opened::Stale("in clear".into())
        );
        assert_eq!(
            open_marked(None, "in clear", "w").unwrap(),
            Opened::Current("in clear".into())
        );
        assert!(
            open_marked(None, &resealed, "w").is_err(),
            "sealed, and no key"
        );
    }
}
