//! Dapr's control plane on the node: Dapr's own Helm chart, from the Dapr module the runtime is
//! built from, with `helm/dapr-control-plane/values-local.yaml` — the sequence the README gives
//! for Minikube and OKE, with the local chart path instead of Dapr's chart repository.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::kube::Kube;
use crate::dapr_runtime;

/// The values file of the local node, relative to the repository root.
pub(crate) const VALUES: &str = "helm/dapr-control-plane/values-local.yaml";
/// Storage class of the Scheduler's volume (see the values file).
const STORAGE_CLASS: &str = "todo-dapr-local";
/// Replicas of the Scheduler's StatefulSet (fixed in Dapr 1.18's chart).
const SCHEDULER_REPLICAS: usize = 3;
/// The user Dapr's images run as, who must be able to write the Scheduler's volume.
const DAPR_UID: u32 = 65532;

/// Dapr's chart inside the module copy `dapr_runtime` built from.
pub(crate) fn chart() -> anyhow::Result<PathBuf> {
    let chart = dapr_runtime::cache_root()?
        .join(format!("dapr-{}", dapr_runtime::RUNTIME_VERSION))
        .join("src/charts/dapr");
    anyhow::ensure!(
        chart.join("Chart.yaml").is_file(),
        "no Dapr chart at {} (the Dapr runtime build copies its module there)",
        chart.display()
    );
    Ok(chart)
}

/// Installs the control plane and waits for every part of it to be ready.
pub(crate) fn install(kube: &Kube, repo: &Path, data_dir: &Path) -> anyhow::Result<()> {
    // The Scheduler keeps its jobs in an embedded etcd on a volume claim per replica (Dapr
    // 1.18's chart always runs three); pre-made hostPath volumes of the class the values name
    // stand in for a provisioner.
    let mut manifest = format!(
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {STORAGE_CLASS}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
"
    );
    for replica in 0..SCHEDULER_REPLICAS {
        let volume = data_dir.join(format!("volumes/dapr-scheduler-{replica}"));
        std::fs::create_dir_all(&volume)?;
        std::os::unix::fs::chown(&volume, Some(DAPR_UID), Some(DAPR_UID))
            .context("giving the Scheduler's volume to Dapr's user")?;
        manifest.push_str(&format!(
            "---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: dapr-scheduler-{replica}
spec:
  storageClassName: {STORAGE_CLASS}
  capacity:
    storage: 1Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath:
    path: {volume}
    type: Directory
",
            volume = volume.display()
        ));
    }
    kube.apply(&manifest)?;
    // The injector must be serving before our chart's pods are created: `install` waits for
    // every control-plane pod to be Ready.
    kube.install("dapr", &chart()?, "dapr-system", &[&repo.join(VALUES)])?;
    Ok(())
}
