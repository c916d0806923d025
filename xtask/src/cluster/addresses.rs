//! The node's fixed names and addresses.
//!
//! The node lives in network namespaces of its own, so these never collide with the host's
//! ports; only the host end of the link and the routes to the pod and service ranges are on the
//! host, and they disappear with the node's namespace. `up` refuses to start when the host
//! already has the link (another cluster, or one that was not stopped).

use std::net::Ipv4Addr;

/// The host's end of the link to the node: servers the pods use (PostgreSQL, Kafka, the SMTP
/// sink) listen here, as managed services outside a real cluster would.
pub(crate) const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// The node's address: the API server's, the kubelet's, the one pods' traffic to the host
/// comes from.
pub(crate) const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
/// Prefix length of the host–node link.
pub(crate) const LINK_PREFIX: u8 = 30;
/// Name of the host's end of the link.
pub(crate) const HOST_LINK: &str = "todo-k8s0";
/// Name of the node's end of the link, inside its namespace.
pub(crate) const NODE_LINK: &str = "eth0";

/// The pods' range (the cluster CIDR); this node's pods get addresses from `POD_SUBNET`.
pub(crate) const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The node's share of the pod range, on the bridge.
pub(crate) const POD_SUBNET: &str = "10.244.0.0/24";
/// The bridge the pods hang off, and its address (the pods' gateway and the cluster DNS).
pub(crate) const BRIDGE: &str = "todo-cni0";
/// The bridge's address.
pub(crate) const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// Prefix length of the bridge's subnet.
pub(crate) const BRIDGE_PREFIX: u8 = 24;

/// Services' virtual IPs.
pub(crate) const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The `kubernetes` Service: the first address of the service range.
pub(crate) const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);
/// The API server's port on the node.
pub(crate) const API_PORT: u16 = 6443;

/// The node's name in the cluster.
pub(crate) const NODE_NAME: &str = "todo-node";
/// The cluster's DNS domain.
pub(crate) const CLUSTER_DOMAIN: &str = "cluster.local";
/// The cgroup (in every v1 hierarchy) the kubelet puts pods under; removed by `down`.
pub(crate) const CGROUP_ROOT: &str = "todo-dapr-node";

/// The API server as seen from the host.
pub(crate) fn api_server_url() -> String {
    format!("https://{NODE_IP}:{API_PORT}")
}
