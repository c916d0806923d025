//! The node's configuration files, rendered from its addresses and data directory.

use std::path::{Path, PathBuf};

use super::addresses::{
    BRIDGE, BRIDGE_IP, CGROUP_ROOT, CLUSTER_CIDR, CLUSTER_DOMAIN, HOST_IP, LINK_PREFIX, NODE_NAME,
    POD_SUBNET, SERVICE_CIDR,
};
use super::pki::COREDNS_USER;

/// Where the CNI plugins are: `CNI_BIN_DIR` (the Nix dev shell sets it), else Debian's
/// `containernetworking-plugins` directory.
pub(crate) fn cni_bin_dir() -> PathBuf {
    std::env::var_os("CNI_BIN_DIR").map_or_else(|| PathBuf::from("/usr/lib/cni"), PathBuf::from)
}

/// containerd's own reference for the pause image (the pod sandbox).
pub(crate) fn containerd_toml(dir: &Path, pause_image: &str) -> String {
    let d = dir.display();
    let cni = cni_bin_dir();
    let cni = cni.display();
    format!(
        r#"version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
# Snapshotters this node cannot use; leaving them on only adds start-up noise.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = "{d}/containerd/containerd.sock"

[ttrpc]
  address = "{d}/containerd/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Imported by `cluster up`; the node cannot pull (it has no route out).
  sandbox_image = "{pause_image}"
  # Pod network namespaces live under the state directory, not /run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  # Processes here lack CAP_SYS_RESOURCE, so none may lower its OOM score: runc failed to set
  # the kubelet's -998 for sandboxes. Containers get at least containerd's own score instead.
  restrict_oom_score_adj = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroup v1 without systemd: the kubelet's cgroupfs driver.
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni}"
    conf_dir = "{d}/cni/net.d"
"#
    )
}

/// The pod network: one bridge, addresses from this node's subnet, routes only to what pods
/// may reach (services, pods, the host end of the link). No masquerade, no default route.
pub(crate) fn cni_conflist(dir: &Path) -> String {
    let link = format!("{HOST_IP}/{LINK_PREFIX}");
    let link_net = network_of(&link);
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "todo-dapr",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": POD_SUBNET, "gateway": BRIDGE_IP.to_string() }]],
                    "routes": [{ "dst": SERVICE_CIDR }, { "dst": link_net }],
                    "dataDir": dir.join("cni/ipam"),
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
        ],
    })
    .to_string()
}

/// `a.b.c.d/n` → the network address with the same prefix.
fn network_of(cidr: &str) -> String {
    let (ip, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let ip: std::net::Ipv4Addr = ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    let bits: u32 = prefix.parse().unwrap_or(32);
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    format!("{}/{bits}", std::net::Ipv4Addr::from(u32::from(ip) & mask))
}

/// The kubelet: cgroupfs on cgroup v1, pods under their own cgroup root, the cluster DNS on
/// the bridge, client certificates checked against the cluster CA.
pub(crate) fn kubelet_yaml(
    dir: &Path,
    ca: &Path,
    serving_cert: &Path,
    serving_key: &Path,
) -> String {
    let d = dir.display();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
tlsCertFile: {cert}
tlsPrivateKeyFile: {key}
address: 0.0.0.0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP_ROOT}
cgroupsPerQOS: true
clusterDNS:
  - {BRIDGE_IP}
clusterDomain: {CLUSTER_DOMAIN}
resolvConf: {d}/resolv.conf
podLogsDir: {d}/pod-logs
failSwapOn: false
serializeImagePulls: false
# The disk is shared with everything else on the machine: evict only when it is really full.
evictionHard:
  memory.available: 200Mi
  nodefs.available: 2%
  nodefs.inodesFree: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
maxPods: 60
rotateCertificates: false
serverTLSBootstrap: false
"#,
        ca = ca.display(),
        cert = serving_cert.display(),
        key = serving_key.display(),
    )
}

/// kube-proxy in iptables mode. The conntrack settings are 0 so that it leaves the machine-wide
/// conntrack table size and timeouts alone.
pub(crate) fn kube_proxy_yaml(kubeconfig: &Path) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {kubeconfig}
mode: iptables
clusterCIDR: {CLUSTER_CIDR}
hostnameOverride: {NODE_NAME}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
"#,
        kubeconfig = kubeconfig.display()
    )
}

/// CoreDNS on the bridge address, answering for the cluster's names only: with no `forward`,
/// nothing is ever sent to a resolver outside the machine.
pub(crate) fn corefile(kubeconfig: &Path) -> String {
    format!(
        r#".:53 {{
    bind {BRIDGE_IP}
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} todo-dapr
        pods insecure
        ttl 5
    }}
    cache 5
}}
"#,
        kubeconfig = kubeconfig.display()
    )
}

/// What CoreDNS may read (it runs as a node program with its own client certificate).
pub(crate) fn coredns_rbac_yaml() -> String {
    format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: todo-dapr:coredns
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: todo-dapr:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: todo-dapr:coredns
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: {COREDNS_USER}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_network_has_no_default_route_and_no_masquerade() {
        let conf: serde_json::Value =
            serde_json::from_str(&cni_conflist(Path::new("/d"))).expect("json");
        let bridge = &conf["plugins"][0];
        assert_eq!(bridge["ipMasq"], false);
        let routes: Vec<&str> = bridge["ipam"]["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .filter_map(|r| r["dst"].as_str())
            .collect();
        assert_eq!(routes, [SERVICE_CIDR, "10.201.0.0/30"]);
    }

    #[test]
    fn coredns_never_forwards() {
        assert!(!corefile(Path::new("/k")).contains("forward"));
    }

    #[test]
    fn network_of_masks_the_host_bits() {
        assert_eq!(network_of("10.201.0.1/30"), "10.201.0.0/30");
        assert_eq!(network_of("10.244.3.7/16"), "10.244.0.0/16");
    }
}
