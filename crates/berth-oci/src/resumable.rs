//! A hasher whose state can be written down and picked up again, so that
//! an upload continued on another node (or after a restart) keeps hashing
//! where it stopped instead of reading the bytes back from storage.
//!
//! `sha2` keeps its state private; it does export the block functions, so
//! this keeps the chaining words, the byte count and the partial block
//! itself and does the final padding as FIPS 180-4 §5.1 describes.

use std::fmt;

use sha2::digest::generic_array::GenericArray;

use crate::{Algorithm, Digest};

const IV256: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const IV512: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

#[derive(Clone, PartialEq, Eq)]
enum Words {
    Sha256([u32; 8]),
    Sha512([u64; 8]),
}

/// A streaming SHA-256 or SHA-512 whose state round-trips through text.
#[derive(Clone, PartialEq, Eq)]
pub struct ResumableHasher {
    words: Words,
    /// Bytes hashed so far, the partial block included.
    len: u64,
    /// The bytes of the block not yet full.
    partial: Vec<u8>,
}

impl fmt::Debug for ResumableHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ResumableHasher({}, {} bytes)",
            self.algorithm(),
            self.len
        )
    }
}

/// A saved hash state that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid saved hash state")]
pub struct HashStateError;

impl ResumableHasher {
    /// A fresh hasher.
    pub fn new(algorithm: Algorithm) -> Self {
        let words = match algorithm {
            Algorithm::Sha256 => Words::Sha256(IV256),
            Algorithm::Sha512 => Words::Sha512(IV512),
        };
        ResumableHasher {
            words,
            len: 0,
            partial: Vec::new(),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.words {
            Words::Sha256(_) => Algorithm::Sha256,
            Words::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn block_len(&self) -> usize {
        match self.words {
            Words::Sha256(_) => 64,
            Words::Sha512(_) => 128,
        }
    }

    fn compress(&mut self, blocks: &[u8]) {
        match &mut self.words {
            Words::Sha256(w) => {
                for block in blocks.chunks_exact(64) {
                    sha2::compress256(w, &[*GenericArray::from_slice(block)]);
                }
            }
            Words::Sha512(w) => {
                for block in blocks.chunks_exact(128) {
                    sha2::compress512(w, &[*GenericArray::from_slice(block)]);
                }
            }
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        let block = self.block_len();
        self.len += bytes.len() as u64;
        if !self.partial.is_empty() {
            let take = (block - self.partial.len()).min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < block {
                return;
            }
            let full = std::mem::take(&mut self.partial);
            self.compress(&full);
        }
        let whole = bytes.len() - bytes.len() % block;
        self.compress(&bytes[..whole]);
        self.partial.extend_from_slice(&bytes[whole..]);
    }

    /// Finish and produce the digest.
    pub fn finish(mut self) -> Digest {
        let block = self.block_len();
        // The message, a 1 bit, zeros, then its length in bits (64 bits for
        // SHA-256, 128 for SHA-512) ending the last block.
        let length_bytes = block / 8;
        let bits = u128::from(self.len) * 8;
        let mut tail = std::mem::take(&mut self.partial);
        tail.push(0x80);
        while tail.len() % block != block - length_bytes {
            tail.push(0);
        }
        tail.extend_from_slice(&bits.to_be_bytes()[16 - length_bytes..]);
        self.compress(&tail);
        let hex = match &self.words {
            Words::Sha256(w) => w.iter().map(|x| format!("{x:08x}")).collect::<String>(),
            Words::Sha512(w) => w.iter().map(|x| format!("{x:016x}")).collect::<String>(),
        };
        let algorithm = self.algorithm();
        Digest::parse(&format!("{}:{hex}", algorithm.as_str()))
            .expect("a hash in hex is a valid digest")
    }

    /// The state as text: `algorithm:length:chaining words:partial block`,
    /// all in hex.
    pub fn to_state(&self) -> String {
        let words = match &self.words {
            Words::Sha256(w) => w.iter().map(|x| format!("{x:08x}")).collect::<String>(),
            Words::Sha512(w) => w.iter().map(|x| format!("{x:016x}")).collect::<String>(),
        };
        format!(
            "{}:{:x}:{words}:{}",
            self.algorithm().as_str(),
            self.len,
            hex::encode(&self.partial)
        )
    }

    /// Pick up a state written by [`to_state`](Self::to_state).
    pub fn from_state(text: &str) -> Result<Self, HashStateError> {
        let mut parts = text.split(':');
        let (Some(alg), Some(len), Some(words), Some(partial), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(HashStateError);
        };
        let algorithm = Algorithm::parse(alg).map_err(|_| HashStateError)?;
        let len = u64::from_str_radix(len, 16).map_err(|_| HashStateError)?;
        let raw = hex::decode(words).map_err(|_| HashStateError)?;
        let partial = hex::decode(partial).map_err(|_| HashStateError)?;
        let words = match algorithm {
            Algorithm::Sha256 if raw.len() == 32 => {
                let mut w = [0u32; 8];
                for (x, b) in w.iter_mut().zip(raw.chunks_exact(4)) {
                    *x = u32::from_be_bytes(b.try_into().map_err(|_| HashStateError)?);
                }
                Words::Sha256(w)
            }
            Algorithm::Sha512 if raw.len() == 64 => {
                let mut w = [0u64; 8];
                for (x, b) in w.iter_mut().zip(raw.chunks_exact(8)) {
                    *x = u64::from_be_bytes(b.try_into().map_err(|_| HashStateError)?);
                }
                Words::Sha512(w)
            }
            _ => return Err(HashStateError),
        };
        let hasher = ResumableHasher {
            words,
            len,
            partial,
        };
        if hasher.partial.len() >= hasher.block_len()
            || hasher.len % hasher.block_len() as u64 != hasher.partial.len() as u64
        {
            return Err(HashStateError);
        }
        Ok(hasher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn matches_the_one_shot_digest_at_every_split_and_through_saved_state() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            for len in [
                0usize, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 1000, 4097,
            ] {
                let data = content(len);
                let expected = Digest::of_bytes(algorithm, &data);
                for split in [0, len / 3, len / 2, len] {
                    let mut h = ResumableHasher::new(algorithm);
                    h.update(&data[..split]);
                    let mut h = ResumableHasher::from_state(&h.to_state()).expect("state");
                    for piece in data[split..].chunks(17) {
                        h.update(piece);
                    }
                    assert_eq!(h.len(), len as u64);
                    assert_eq!(h.finish(), expected, "{algorithm} len {len} split {split}");
                }
            }
        }
    }

    #[test]
    fn refuses_damaged_state() {
        let mut h = ResumableHasher::new(Algorithm::Sha256);
        h.update(b"abc");
        let good = h.to_state();
        assert!(ResumableHasher::from_state(&good).is_ok());
        for bad in [
            "",
            "sha256",
            "md5:3:00:616263",
            &good.replace(":3:", ":4:"),
            &format!("{good}:extra"),
            &good.replace("616263", "6162zz"),
        ] {
            assert!(ResumableHasher::from_state(bad).is_err(), "{bad}");
        }
    }
}
