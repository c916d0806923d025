//! The cluster's certificates and kubeconfigs, made fresh for every `up`.
//!
//! One CA signs everything: the API server's serving certificate, a client certificate per
//! component (the API server maps the subject to a user: CN is the name, O the groups — the
//! names below are the ones Kubernetes' default RBAC bindings expect) and the kubelet's serving
//! certificate. The service-account token key pair is separate. Keys never leave the run's data
//! directory, which `down` deletes.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::addresses::{
    API_PORT, CLUSTER_DOMAIN, KUBERNETES_SERVICE_IP, NODE_IP, NODE_NAME, api_server_url,
};

/// A certificate and its key on disk.
#[derive(Clone, Debug)]
pub(crate) struct CertFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// Every file of the cluster's PKI.
#[derive(Clone, Debug)]
pub(crate) struct Pki {
    pub(crate) ca: CertFiles,
    pub(crate) apiserver: CertFiles,
    pub(crate) apiserver_kubelet_client: CertFiles,
    pub(crate) kubelet_serving: CertFiles,
    pub(crate) service_account_key: PathBuf,
    pub(crate) service_account_pub: PathBuf,
    /// Kubeconfigs: the administrator's (for the host, reaching the node's address) and one per
    /// component (reaching the API server on the node's loopback).
    pub(crate) admin_kubeconfig: PathBuf,
    pub(crate) node_admin_kubeconfig: PathBuf,
    pub(crate) controller_manager_kubeconfig: PathBuf,
    pub(crate) scheduler_kubeconfig: PathBuf,
    pub(crate) kubelet_kubeconfig: PathBuf,
    pub(crate) proxy_kubeconfig: PathBuf,
    pub(crate) coredns_kubeconfig: PathBuf,
}

/// The user CoreDNS authenticates as; `node` grants it read access to what it serves.
pub(crate) const COREDNS_USER: &str = "todo-dapr:coredns";

/// Writes a new PKI into `dir`.
pub(crate) fn create(dir: &Path) -> anyhow::Result<Pki> {
    std::fs::create_dir_all(dir)?;
    let ca = Ca::new()?;
    let ca_files = write_pair(dir, "ca", &ca.issuer.pem(), &ca.key_pem)?;

    let local_api = format!("https://127.0.0.1:{API_PORT}");
    let apiserver = ca.sign(
        dir,
        "apiserver",
        &Subject::server("kube-apiserver"),
        &[
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
            format!("kubernetes.default.svc.{CLUSTER_DOMAIN}"),
            "localhost".into(),
            KUBERNETES_SERVICE_IP.to_string(),
            NODE_IP.to_string(),
            "127.0.0.1".into(),
        ],
    )?;
    let kubelet_serving = ca.sign(
        dir,
        "kubelet-serving",
        &Subject::server(NODE_NAME),
        &[NODE_NAME.into(), NODE_IP.to_string()],
    )?;
    let apiserver_kubelet_client = ca.sign(
        dir,
        "apiserver-kubelet-client",
        &Subject::client("kube-apiserver-kubelet-client", Some("system:masters")),
        &[],
    )?;

    let kubeconfig = |name: &str, user: &Subject, server: &str| -> anyhow::Result<PathBuf> {
        let files = ca.sign(dir, name, user, &[])?;
        let path = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, kubeconfig_yaml(server, &ca_files.cert, &files))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let admin_user = Subject::client("todo-dapr-admin", Some("system:masters"));
    let pki = Pki {
        admin_kubeconfig: kubeconfig("admin", &admin_user, &api_server_url())?,
        node_admin_kubeconfig: kubeconfig("node-admin", &admin_user, &local_api)?,
        controller_manager_kubeconfig: kubeconfig(
            "controller-manager",
            &Subject::client("system:kube-controller-manager", None),
            &local_api,
        )?,
        scheduler_kubeconfig: kubeconfig(
            "scheduler",
            &Subject::client("system:kube-scheduler", None),
            &local_api,
        )?,
        kubelet_kubeconfig: kubeconfig(
            "kubelet",
            &Subject::client(&format!("system:node:{NODE_NAME}"), Some("system:nodes")),
            &local_api,
        )?,
        proxy_kubeconfig: kubeconfig(
            "kube-proxy",
            &Subject::client("system:kube-proxy", None),
            &local_api,
        )?,
        coredns_kubeconfig: kubeconfig(
            "coredns",
            &Subject::client(COREDNS_USER, None),
            &local_api,
        )?,
        ca: ca_files,
        apiserver,
        apiserver_kubelet_client,
        kubelet_serving,
        service_account_key: dir.join("sa.key"),
        service_account_pub: dir.join("sa.pub"),
    };
    let sa = KeyPair::generate()?;
    write_private(&pki.service_account_key, &sa.serialize_pem())?;
    std::fs::write(&pki.service_account_pub, sa.public_key_pem())?;
    Ok(pki)
}

/// Who a certificate is for.
struct Subject {
    common_name: String,
    organization: Option<String>,
    usage: ExtendedKeyUsagePurpose,
}

impl Subject {
    fn server(name: &str) -> Self {
        Self {
            common_name: name.into(),
            organization: None,
            usage: ExtendedKeyUsagePurpose::ServerAuth,
        }
    }

    fn client(name: &str, group: Option<&str>) -> Self {
        Self {
            common_name: name.into(),
            organization: group.map(Into::into),
            usage: ExtendedKeyUsagePurpose::ClientAuth,
        }
    }
}

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
}

impl Ca {
    fn new() -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "todo-dapr local cluster CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, key)?,
            key_pem,
        })
    }

    fn sign(
        &self,
        dir: &Path,
        name: &str,
        subject: &Subject,
        alt_names: &[String],
    ) -> anyhow::Result<CertFiles> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(alt_names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, subject.common_name.as_str());
        if let Some(org) = &subject.organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org.as_str());
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![subject.usage.clone()];
        let cert = params.signed_by(&key, &self.issuer)?;
        write_pair(dir, name, &cert.pem(), &key.serialize_pem())
    }
}

fn write_pair(dir: &Path, name: &str, cert: &str, key: &str) -> anyhow::Result<CertFiles> {
    let files = CertFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.cert, cert)?;
    write_private(&files.key, key)?;
    Ok(files)
}

/// Writes a key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    Ok(())
}

/// A kubeconfig naming the files (not embedding them), so it holds no key material itself.
fn kubeconfig_yaml(server: &str, ca: &Path, client: &CertFiles) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: todo-dapr
    cluster:
      server: {server}
      certificate-authority: {ca}
users:
  - name: todo-dapr
    user:
      client-certificate: {cert}
      client-key: {key}
contexts:
  - name: todo-dapr
    context:
      cluster: todo-dapr
      user: todo-dapr
current-context: todo-dapr
",
        ca = ca.display(),
        cert = client.cert.display(),
        key = client.key.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kubeconfig_names_files_that_exist() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = create(dir.path()).expect("pki");
        for kubeconfig in [
            &pki.admin_kubeconfig,
            &pki.kubelet_kubeconfig,
            &pki.coredns_kubeconfig,
        ] {
            let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
            let user = &doc["users"][0]["user"];
            for field in ["client-certificate", "client-key"] {
                let path = user[field].as_str().expect(field);
                assert!(Path::new(path).is_file(), "{field} {path} is missing");
            }
            assert!(
                !text.contains("PRIVATE KEY"),
                "keys stay in their own files"
            );
        }
        assert!(
            std::fs::read_to_string(&pki.admin_kubeconfig)
                .expect("admin")
                .contains(&format!("https://{NODE_IP}:{API_PORT}")),
            "the host reaches the API server at the node's address"
        );
    }
}
