//! Values sealed at rest with a key from the configuration
//! (ChaCha20-Poly1305 from `ring`, a random nonce per value, the owner's
//! name as associated data so a sealed value cannot be moved to another
//! row). The key never touches the database.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "v1:";

/// Seals and opens values.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
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
        "a sealed value does not open with the configured encryption key (was the key changed?)"
    )]
    Open,
    /// The system's random source failed.
    #[error("no randomness for a nonce")]
    Random,
}

impl Sealer {
    /// A sealer whose key is derived (HKDF-SHA256) from `secret`.
    pub fn new(secret: &str) -> Result<Self, SealError> {
        if secret.len() < 32 {
            return Err(SealError::WeakKey);
        }
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"berth sealed values");
        let prk = salt.extract(secret.as_bytes());
        let okm = prk
            .expand(&[b"chacha20-poly1305"], &CHACHA20_POLY1305)
            .map_err(|_| SealError::WeakKey)?;
        let key = UnboundKey::from(okm);
        Ok(Sealer {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
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

    /// Open a value sealed for `owner`.
    pub fn open(&self, sealed: &str, owner: &str) -> Result<String, SealError> {
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
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut data)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)
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
}
