//! A throwaway PKI for the test control plane: one CA signing every serving and client certificate.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, PEM encoded.
#[derive(Clone)]
pub struct CertPair {
    pub cert: String,
    pub key: String,
}

pub struct Ca {
    pub cert: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new() -> Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "millrace-test-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?.pem();
        Ok(Ca {
            cert,
            issuer: Issuer::new(params, key),
        })
    }

    /// A serving certificate for the loopback address (and the in-cluster names of the apiserver).
    pub fn serving(&self, name: &str, extra_sans: &[&str]) -> Result<CertPair> {
        let mut sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        sans.extend(extra_sans.iter().map(|s| s.to_string()));
        self.sign(name, &[], sans, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate: Kubernetes reads the user from CN and the groups from O.
    #[allow(
        dead_code,
        reason = "the git transport tests need only server certificates"
    )]
    pub fn client(&self, user: &str, groups: &[&str]) -> Result<CertPair> {
        self.sign(
            user,
            groups,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn sign(
        &self,
        cn: &str,
        orgs: &[&str],
        sans: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<CertPair> {
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        for org in orgs {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *org);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?.pem();
        Ok(CertPair {
            cert,
            key: key.serialize_pem(),
        })
    }
}

impl CertPair {
    /// Writes `<name>.crt` and `<name>.key` into `dir`, returning their paths.
    #[allow(
        dead_code,
        reason = "the git transport tests keep certificates in memory"
    )]
    pub fn write(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert)?;
        std::fs::write(&key, &self.key)?;
        Ok((cert, key))
    }
}
