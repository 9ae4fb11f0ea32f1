//! Why a call failed, in terms a caller can act on.

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry URL or a Location it sent is unusable.
    #[error("invalid URL: {0}")]
    Url(String),
    /// The TLS settings (CA certificate) are unusable.
    #[error("TLS settings: {0}")]
    Tls(String),
    /// No answer: refused, reset, timed out, TLS failure.
    #[error("cannot reach the registry: {0}")]
    Transport(String),
    /// The credentials were refused (or none were given and some are needed).
    #[error("the registry refused the credentials: {0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("the registry denied access: {0}")]
    Denied(String),
    /// Any other answer than the one expected.
    #[error("the registry answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Its OCI error messages, or the start of its body.
        message: String,
    },
    /// Content whose digest is not the one asked for.
    #[error("digest mismatch: asked for {expected}, got {actual}")]
    DigestMismatch {
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// An answer that breaks the protocol.
    #[error("invalid answer from the registry: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Whether trying again later may help: the registry was unreachable,
    /// overloaded or failing.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, ClientError>;

/// An error with its causes.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
