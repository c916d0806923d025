//! Server-side TLS material the harness hands to the servers it starts (PostgreSQL, Kafka).
//!
//! Managed services in the cloud (OCI Database with PostgreSQL, OCI Streaming) only speak TLS,
//! and clients verify them against a CA. Tests make that CA and the server certificate at run
//! time (never committed) and pass the result here, in PEM, the one format every server reads.

/// The server side of TLS: a certificate (PEM, chain allowed) and its private key (PEM).
#[derive(Clone)]
pub struct ServerTls {
    /// The server certificate, then any intermediates.
    pub cert_pem: String,
    /// The certificate's private key. Kafka reads unencrypted PKCS#8 only
    /// (`-----BEGIN PRIVATE KEY-----`, what rcgen writes); PostgreSQL reads that too.
    pub key_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a test fixture, but keys stay out of logs all the same.
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Fails unless both parts look like the PEM they should be, so a swapped or empty field
    /// is reported here rather than as a server that exits with a parser error in its log.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.cert_pem.contains("-----BEGIN CERTIFICATE-----"),
            "ServerTls::cert_pem holds no PEM certificate"
        );
        anyhow::ensure!(
            self.key_pem.contains("-----BEGIN PRIVATE KEY-----"),
            "ServerTls::key_pem is not an unencrypted PKCS#8 PEM key (`BEGIN PRIVATE KEY`); \
             convert it with `openssl pkcs8 -topk8 -nocrypt`"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key_and_check_names_the_bad_part() {
        let tls = ServerTls {
            cert_pem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into(),
            key_pem: "-----BEGIN RSA PRIVATE KEY-----\nsecret\n-----END RSA PRIVATE KEY-----\n"
                .into(),
        };
        assert!(!format!("{tls:?}").contains("secret"));
        let err = tls.check().unwrap_err().to_string();
        assert!(err.contains("PKCS#8"), "{err}");
        let swapped = ServerTls {
            cert_pem: tls.key_pem,
            key_pem: tls.cert_pem,
        };
        assert!(
            swapped
                .check()
                .unwrap_err()
                .to_string()
                .contains("cert_pem")
        );
    }
}
