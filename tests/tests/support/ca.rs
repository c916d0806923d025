//! A throw-away certificate authority for TLS tests: made at run time, never committed.

use harness::ServerTls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A test CA: its certificate (PEM) and the issuer that signs server certificates.
pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new self-signed CA called `name`, with a fresh key.
    pub(crate) fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    /// The CA certificate, what clients are told to trust.
    pub(crate) fn cert_pem(&self) -> String {
        self.issuer.as_ref().pem()
    }

    /// A server certificate for 127.0.0.1 and localhost, signed by this CA.
    pub(crate) fn server(&self) -> anyhow::Result<ServerTls> {
        self.server_for("server.test", &["127.0.0.1", "localhost"])
    }

    /// A server certificate with common name `name` for `sans` (addresses become IP SANs,
    /// which clients that dial an address check), signed by this CA. The key is PKCS#8 PEM.
    pub(crate) fn server_for(&self, name: &str, sans: &[&str]) -> anyhow::Result<ServerTls> {
        let key = KeyPair::generate()?;
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
