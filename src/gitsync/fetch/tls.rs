//! An https server's certificate checked against the CA a source names, instead of the system's
//! CAs (libgit2's own check knows only those).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

/// The CA certificates of a PEM bundle, or why it is not one.
pub fn parse_ca(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA is not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("the CA holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// Whether `server` (DER, as the server sent it) was signed by one of `cas` and names `host`.
pub fn verify(cas: &[CertificateDer<'_>], server: &[u8], host: &str) -> Result<(), String> {
    let anchors = cas
        .iter()
        .map(|ca| webpki::anchor_from_trusted_cert(ca).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA certificate cannot be used: {e}"))?;
    let server = CertificateDer::from(server);
    let leaf = EndEntityCert::try_from(&server)
        .map_err(|e| format!("the server's certificate cannot be read: {e}"))?;
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        UnixTime::now(),
        KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| format!("the server's certificate is not signed by the given CA: {e}"))?;
    let name =
        ServerName::try_from(host).map_err(|e| format!("`{host}` is not a host name: {e}"))?;
    leaf.verify_is_valid_for_subject_name(&name)
        .map_err(|e| format!("the server's certificate is not for {host}: {e}"))
}
