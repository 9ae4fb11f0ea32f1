//! Public keys of signers, read from PEM (`PUBLIC KEY`, SubjectPublicKeyInfo)
//! as `cosign generate-key-pair` and `openssl pkey -pubout` write them:
//! ECDSA P-256 and P-384, Ed25519, RSA (2048 to 8192 bits).

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use sha2::{Digest, Sha256};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not PEM, or not a `PUBLIC KEY` block.
    #[error("not a PEM public key (expected -----BEGIN PUBLIC KEY-----): {0}")]
    NotPem(String),
    /// A key type or curve Berth does not verify with.
    #[error("unsupported key: {0} (use ECDSA P-256/P-384, Ed25519 or RSA)")]
    Unsupported(String),
}

/// The kinds of key a signature may be checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA.
    Rsa,
}

impl KeyKind {
    /// As shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::EcdsaP384 => "ecdsa-p384",
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Rsa => "rsa",
        }
    }

    /// The signature schemes tried, in order. cosign signs a SHA-256 hash
    /// whatever the key; P-384 keys made by other tools use SHA-384; RSA
    /// may be PKCS#1 v1.5 or PSS.
    fn algorithms(self) -> &'static [&'static dyn VerificationAlgorithm] {
        static P256: [&dyn VerificationAlgorithm; 1] = [&signature::ECDSA_P256_SHA256_ASN1];
        static P384: [&dyn VerificationAlgorithm; 2] = [
            &signature::ECDSA_P384_SHA256_ASN1,
            &signature::ECDSA_P384_SHA384_ASN1,
        ];
        static ED25519: [&dyn VerificationAlgorithm; 1] = [&signature::ED25519];
        static RSA: [&dyn VerificationAlgorithm; 2] = [
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &signature::RSA_PSS_2048_8192_SHA256,
        ];
        match self {
            KeyKind::EcdsaP256 => &P256,
            KeyKind::EcdsaP384 => &P384,
            KeyKind::Ed25519 => &ED25519,
            KeyKind::Rsa => &RSA,
        }
    }
}

/// A public key, ready to verify.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    /// What ring takes: the uncompressed point, the raw Ed25519 key or the
    /// PKCS#1 RSA key.
    material: Vec<u8>,
    /// `sha256:<hex>` of the SubjectPublicKeyInfo DER: names the key in
    /// verdicts and audit entries.
    fingerprint: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} {})", self.kind.as_str(), self.fingerprint)
    }
}

impl PublicKey {
    /// Read a PEM `PUBLIC KEY` block.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
            .map_err(|e| KeyError::NotPem(e.to_string()))?;
        if block.label != "PUBLIC KEY" {
            return Err(KeyError::NotPem(format!("a {:?} block", block.label)));
        }
        PublicKey::from_spki_der(&block.contents)
    }

    /// Read a DER SubjectPublicKeyInfo (also what an X.509 certificate
    /// holds).
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| KeyError::NotPem(format!("not a SubjectPublicKeyInfo: {e}")))?;
        if !rest.is_empty() {
            return Err(KeyError::NotPem("bytes after the key".into()));
        }
        let alg = &spki.algorithm.algorithm;
        let data = spki.subject_public_key.data.to_vec();
        let kind = if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == OID_EC_P256 => KeyKind::EcdsaP256,
                Some(c) if c == OID_NIST_EC_P384 => KeyKind::EcdsaP384,
                Some(c) => return Err(KeyError::Unsupported(format!("elliptic curve {c}"))),
                None => return Err(KeyError::Unsupported("an EC key without a curve".into())),
            }
        } else if *alg == OID_SIG_ED25519 {
            KeyKind::Ed25519
        } else if *alg == OID_PKCS1_RSAENCRYPTION {
            let bits = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(k)) => k.key_size(),
                _ => return Err(KeyError::NotPem("a malformed RSA key".into())),
            };
            if !(2048..=8192).contains(&bits) {
                return Err(KeyError::Unsupported(format!(
                    "RSA with {bits} bits (2048 to 8192)"
                )));
            }
            KeyKind::Rsa
        } else {
            return Err(KeyError::Unsupported(format!("algorithm {alg}")));
        };
        let expected = match kind {
            KeyKind::EcdsaP256 => Some(65),
            KeyKind::EcdsaP384 => Some(97),
            KeyKind::Ed25519 => Some(32),
            KeyKind::Rsa => None,
        };
        if expected.is_some_and(|n| n != data.len()) {
            return Err(KeyError::NotPem(format!(
                "a {} key of {} bytes",
                kind.as_str(),
                data.len()
            )));
        }
        Ok(PublicKey {
            kind,
            material: data,
            fingerprint: format!("sha256:{}", hex::encode(Sha256::digest(spki.raw))),
        })
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// `sha256:<hex>` of its SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether `signature` (DER for ECDSA, raw for Ed25519 and RSA) signs
    /// `message` under this key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.kind.algorithms().iter().any(|alg| {
            UnparsedPublicKey::new(*alg, &self.material)
                .verify(message, signature)
                .is_ok()
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    pub(crate) fn pem(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// SPKI DER for a raw key, with the fixed prefixes of RFC 5480/8410.
    pub(crate) fn spki(kind: KeyKind, raw: &[u8]) -> Vec<u8> {
        let prefix: &[u8] = match kind {
            KeyKind::EcdsaP256 => &[
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ],
            KeyKind::EcdsaP384 => &[
                0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
            ],
            KeyKind::Ed25519 => &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ],
            KeyKind::Rsa => unreachable!("RSA keys come from fixtures"),
        };
        [prefix, raw].concat()
    }

    type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

    /// A signer for tests: its PEM public key and a signing function.
    pub(crate) struct TestSigner {
        pub pem: String,
        sign: SignFn,
    }

    impl TestSigner {
        pub(crate) fn new(kind: KeyKind) -> TestSigner {
            let rng = SystemRandom::new();
            match kind {
                KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => {
                    let alg = if kind == KeyKind::EcdsaP256 {
                        &signature::ECDSA_P256_SHA256_ASN1_SIGNING
                    } else {
                        &signature::ECDSA_P384_SHA384_ASN1_SIGNING
                    };
                    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
                    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
                    let pem = pem(&spki(kind, pair.public_key().as_ref()));
                    TestSigner {
                        pem,
                        sign: Box::new(move |m| {
                            pair.sign(&SystemRandom::new(), m)
                                .unwrap()
                                .as_ref()
                                .to_vec()
                        }),
                    }
                }
                KeyKind::Ed25519 => {
                    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
                    let pem = pem(&spki(kind, pair.public_key().as_ref()));
                    TestSigner {
                        pem,
                        sign: Box::new(move |m| pair.sign(m).as_ref().to_vec()),
                    }
                }
                KeyKind::Rsa => unreachable!(),
            }
        }

        pub(crate) fn sign(&self, m: &[u8]) -> Vec<u8> {
            (self.sign)(m)
        }
    }

    #[test]
    fn ecdsa_and_ed25519_keys_verify_their_signatures_only() {
        for kind in [KeyKind::EcdsaP256, KeyKind::EcdsaP384, KeyKind::Ed25519] {
            let signer = TestSigner::new(kind);
            let other = TestSigner::new(kind);
            let key = PublicKey::from_pem(&signer.pem).unwrap();
            assert_eq!(key.kind(), kind);
            assert!(key.fingerprint().starts_with("sha256:"));
            let sig = signer.sign(b"payload");
            assert!(key.verifies(b"payload", &sig), "{kind:?}");
            assert!(!key.verifies(b"payloaD", &sig), "{kind:?}");
            assert!(
                !key.verifies(b"payload", &other.sign(b"payload")),
                "{kind:?}"
            );
            assert!(!key.verifies(b"payload", &[]), "{kind:?}");
        }
    }

    // An RSA-2048 public key and a PKCS#1 v1.5 SHA-256 signature of
    // "payload", made with `openssl genpkey` / `openssl dgst -sha256 -sign`.
    const RSA_PEM: &str = include_str!("../testdata/rsa.pub.pem");
    const RSA_SIG: &[u8] = include_bytes!("../testdata/rsa.sig");

    #[test]
    fn rsa_keys_verify_pkcs1_signatures() {
        let key = PublicKey::from_pem(RSA_PEM).unwrap();
        assert_eq!(key.kind(), KeyKind::Rsa);
        assert!(key.verifies(b"payload", RSA_SIG));
        assert!(!key.verifies(b"other", RSA_SIG));
    }

    #[test]
    fn what_is_no_usable_key_is_refused_with_the_reason() {
        assert!(matches!(
            PublicKey::from_pem("hello"),
            Err(KeyError::NotPem(_))
        ));
        let cert = RSA_PEM.replace("PUBLIC KEY", "CERTIFICATE");
        assert!(matches!(
            PublicKey::from_pem(&cert),
            Err(KeyError::NotPem(_))
        ));
        // A P-256 prefix with a short point.
        let short = pem(&spki(KeyKind::EcdsaP256, &[4; 10]));
        assert!(PublicKey::from_pem(&short).is_err());
        // secp256k1 (1.3.132.0.10) is not taken.
        let k1 = [
            &[
                0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00,
            ][..],
            &[4; 65],
        ]
        .concat();
        let e = PublicKey::from_pem(&pem(&k1)).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported(_)), "{e}");
    }
}
