//! X.509 helpers both certificate-based signature kinds share (sigstore's
//! keyless certificates, Notation's trust stores): reading certificates,
//! validity at a time, CA-ness.

use x509_parser::prelude::*;

/// Most certificates between a signer and a root.
pub const MAX_DEPTH: usize = 6;

/// Read one DER certificate (nothing after it).
pub fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], c)) => Ok(c),
        Ok(_) => Err("bytes after a certificate".into()),
        Err(e) => Err(format!("not an X.509 certificate: {e}")),
    }
}

/// Whether `cert` was valid at `at` (Unix seconds); the error names `what`
/// and `when` (the moment that counts: "when the log took the signature").
pub fn valid_at(cert: &X509Certificate<'_>, at: i64, what: &str, when: &str) -> Result<(), String> {
    let v = cert.validity();
    if at < v.not_before.timestamp() || at > v.not_after.timestamp() {
        return Err(format!(
            "the {what} certificate was not valid {when} \
             (valid {} to {}, Unix time {at}): expired or not yet valid",
            v.not_before, v.not_after
        ));
    }
    Ok(())
}

/// Whether `cert` may issue certificates.
pub fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// Certificates from a PEM text (one or more `CERTIFICATE` blocks), DER.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            return Err(format!("a {:?} block, not a CERTIFICATE", block.label));
        }
        parse(&block.contents)?;
        out.push(block.contents);
        if out.len() > MAX_DEPTH * 4 {
            return Err("too many certificates".into());
        }
    }
    if out.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    Ok(out)
}
