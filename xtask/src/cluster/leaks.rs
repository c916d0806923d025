//! Proof that a stopped node left nothing on the machine: the host's network interfaces,
//! iptables rules, mounts and cgroups are compared with a snapshot taken before `up`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::addresses::CGROUP_ROOT;
use super::host::cgroup_hierarchies;

/// What the host looked like.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct HostSnapshot {
    links: BTreeSet<String>,
    iptables: BTreeSet<String>,
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<String>,
}

impl HostSnapshot {
    pub(crate) fn take() -> anyhow::Result<Self> {
        let links = std::fs::read_dir("/sys/class/net")?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")?
            .lines()
            // Field 5 is the mount point (mount IDs differ between reads and are left out).
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
            .collect();
        let cgroups = cgroup_hierarchies()?
            .into_iter()
            .map(|h| h.join(CGROUP_ROOT))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        Ok(Self {
            links,
            iptables: iptables_rules()?,
            mounts,
            cgroups,
        })
    }

    /// What `after` has that `self` had not (or lost), as readable lines; empty when equal.
    pub(crate) fn differences(&self, after: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let mut compare = |what: &str, before: &BTreeSet<String>, now: &BTreeSet<String>| {
            for added in now.difference(before) {
                out.push(format!("{what} left behind: {added}"));
            }
            for gone in before.difference(now) {
                out.push(format!("{what} gone: {gone}"));
            }
        };
        compare("network interface", &self.links, &after.links);
        compare("iptables rule", &self.iptables, &after.iptables);
        compare("mount", &self.mounts, &after.mounts);
        compare("cgroup", &self.cgroups, &after.cgroups);
        out
    }

    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        Ok(serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )?)
    }
}

/// Compares the host now with `before`; fails listing every difference.
pub(crate) fn check(before: &HostSnapshot) -> anyhow::Result<()> {
    let differences = before.differences(&HostSnapshot::take()?);
    if !differences.is_empty() {
        bail!(
            "the node left traces on the machine:\n  {}",
            differences.join("\n  ")
        );
    }
    Ok(())
}

/// The host's iptables rules (every table), without counters and comments.
fn iptables_rules() -> anyhow::Result<BTreeSet<String>> {
    let out = Command::new("iptables-save")
        .output()
        .context("running iptables-save")?;
    if !out.status.success() {
        bail!(
            "iptables-save failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(normalise_rules(&String::from_utf8_lossy(&out.stdout)))
}

/// Drops what changes without anyone adding a rule: comment lines (`# Generated … on <date>`)
/// and the packet counters of chain policies (`:INPUT ACCEPT [12:345]`).
fn normalise_rules(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.rsplit_once(" [") {
            Some((head, _)) if l.starts_with(':') => head.to_owned(),
            _ => l.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_comments_do_not_count_as_rules() {
        let a = normalise_rules("# Generated on Mon\n*nat\n:PREROUTING ACCEPT [1:2]\nCOMMIT\n");
        let b = normalise_rules("# Generated on Tue\n*nat\n:PREROUTING ACCEPT [9:99]\nCOMMIT\n");
        assert_eq!(a, b);
        let c = normalise_rules(
            "*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n",
        );
        let before = HostSnapshot::default();
        let after = HostSnapshot {
            iptables: c,
            ..HostSnapshot::default()
        };
        let found = before.differences(&after);
        assert!(
            found
                .iter()
                .any(|d| d.contains("-A PREROUTING -j KUBE-SERVICES")),
            "{found:?}"
        );
    }
}
