//! The cluster's monitoring, as a user of the Prometheus Operator runs it: the operator's CRDs
//! and its own example manifests (from the module `kube_build` builds it from), one Prometheus
//! it manages, and a ServiceMonitor for the kubelet's cAdvisor endpoint, which is where the
//! per-container series of the sidecar-overhead dashboard come from.
//!
//! Prometheus picks monitors and rules by the label [`SELECTOR_LABEL`], as kube-prometheus-stack
//! picks them by its `release` label: our chart's values add it (`values-local.yaml`), which is
//! the one setting a user of kube-prometheus-stack has to make too.

use std::path::Path;

use anyhow::Context;

use super::kube::Kube;
use crate::cluster_images::{
    MONITORING_REGISTRY, UPSTREAM_MONITORING_REGISTRY, monitoring_reference,
};
use crate::kube_build::{MonitoringTools, PROMETHEUS_VERSION};

/// The namespace of the operator and Prometheus.
pub(crate) const NAMESPACE: &str = "monitoring";
/// The Prometheus resource; the operator names its pods `prometheus-<name>-<n>`.
pub(crate) const PROMETHEUS: &str = "todo-dapr";
/// The label (and value) Prometheus selects ServiceMonitors, PodMonitors and PrometheusRules by.
pub(crate) const SELECTOR_LABEL: (&str, &str) = ("release", "monitoring");
/// Scrape and rule evaluation interval: short, so a test sees rates within seconds.
const INTERVAL: &str = "5s";

/// The operator's example manifests that are applied, from `example/rbac/` of its module.
const OPERATOR_MANIFESTS: [&str; 5] = [
    "prometheus-operator/prometheus-operator-service-account.yaml",
    "prometheus-operator/prometheus-operator-cluster-role.yaml",
    "prometheus-operator/prometheus-operator-cluster-role-binding.yaml",
    "prometheus-operator/prometheus-operator-deployment.yaml",
    "prometheus-operator/prometheus-operator-service.yaml",
];
const PROMETHEUS_RBAC: [&str; 3] = [
    "prometheus/prometheus-service-account.yaml",
    "prometheus/prometheus-cluster-role.yaml",
    "prometheus/prometheus-cluster-role-binding.yaml",
];

/// Installs the CRDs, the operator, Prometheus and the kubelet's ServiceMonitor, and waits until
/// Prometheus is Ready.
pub(crate) fn install(kube: &Kube, tools: &MonitoringTools) -> anyhow::Result<()> {
    let example = tools.operator_source.join("example");
    // Server-side: the CRDs' schemas exceed the annotation a client-side apply keeps.
    kube.kubectl(&[
        "apply",
        "--server-side",
        "-f",
        &example
            .join("prometheus-operator-crd")
            .display()
            .to_string(),
    ])?;
    kube.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=120s",
    ])?;
    kube.kubectl(&["create", "namespace", NAMESPACE])?;
    let mut manifests = Vec::new();
    for file in OPERATOR_MANIFESTS.iter().chain(&PROMETHEUS_RBAC) {
        manifests.push(adapted(&example.join("rbac").join(file))?);
    }
    manifests.push(prometheus_resource());
    manifests.push(KUBELET_MONITOR.replace("{label}", &selector_yaml()));
    kube.apply_in(NAMESPACE, &manifests.join("\n---\n"))?;
    kube.kubectl(&[
        "rollout",
        "status",
        "--namespace",
        NAMESPACE,
        "deployment/prometheus-operator",
        "--timeout=300s",
    ])?;
    // The operator creates the StatefulSet a moment after it starts.
    kube.kubectl(&[
        "wait",
        "--namespace",
        NAMESPACE,
        "--for=jsonpath={.status.availableReplicas}=1",
        &format!("prometheus/{PROMETHEUS}"),
        "--timeout=300s",
    ])?;
    Ok(())
}

/// An example manifest of the operator for this cluster: in [`NAMESPACE`] instead of
/// `default`, with our registry for `quay.io` (the only edits).
fn adapted(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .replace("namespace: default", &format!("namespace: {NAMESPACE}"))
        .replace(
            &format!("{UPSTREAM_MONITORING_REGISTRY}/"),
            &format!("{MONITORING_REGISTRY}/"),
        ))
}

fn selector_yaml() -> String {
    format!("{}: {}", SELECTOR_LABEL.0, SELECTOR_LABEL.1)
}

/// The one Prometheus: every monitor and rule carrying [`SELECTOR_LABEL`], in any namespace.
fn prometheus_resource() -> String {
    let label = selector_yaml();
    let image = monitoring_reference("prometheus", "prometheus", PROMETHEUS_VERSION);
    format!(
        "apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: {PROMETHEUS}
spec:
  image: {image}
  version: v{PROMETHEUS_VERSION}
  replicas: 1
  serviceAccountName: prometheus
  scrapeInterval: {INTERVAL}
  evaluationInterval: {INTERVAL}
  serviceMonitorSelector:
    matchLabels: {{{label}}}
  serviceMonitorNamespaceSelector: {{}}
  podMonitorSelector:
    matchLabels: {{{label}}}
  podMonitorNamespaceSelector: {{}}
  ruleSelector:
    matchLabels: {{{label}}}
  ruleNamespaceSelector: {{}}
  resources:
    requests:
      memory: 200Mi
"
    )
}

/// The kubelet's cAdvisor endpoint, through the Service the operator keeps for the nodes
/// (`--kubelet-service=kube-system/kubelet` in its example Deployment). The series carry their
/// own `namespace`, `pod` and `container` labels, which must win over the target's; the kubelet
/// serves a certificate of the cluster CA for the node's address and takes the service
/// account's token (webhook authentication, `nodes/metrics` in the example ClusterRole).
const KUBELET_MONITOR: &str = "apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: kubelet-cadvisor
  labels: {{label}}
spec:
  jobLabel: k8s-app
  namespaceSelector:
    matchNames: [kube-system]
  selector:
    matchLabels:
      k8s-app: kubelet
  endpoints:
    - port: https-metrics
      scheme: https
      path: /metrics/cadvisor
      honorLabels: true
      bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
      tlsConfig:
        caFile: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
";
