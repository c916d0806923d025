//! Every program `cargo xtask` and the test harness look for on `PATH` (or run by name), in one
//! list: the Nix dev shell must provide each of them (`nix_check` proves it against the stub
//! nixpkgs' record of which package holds which program), and a test below fails when a new
//! lookup in xtask or the harness is not listed here.

/// The programs, each with why it is needed.
pub(crate) const TOOLS: &[(&str, &str)] = &[
    (
        "go",
        "builds the Dapr runtime, Kubernetes, etcd, CoreDNS and helm from their modules",
    ),
    ("dapr", "`cargo xtask up` runs `dapr run -f`"),
    ("redis-server", "the Redis broker profile"),
    ("redis-cli", "the harness' Redis readiness check"),
    ("java", "the Kafka broker"),
    ("mvn", "fetches the Kafka broker's jars"),
    ("epmd", "RabbitMQ's Erlang port mapper"),
    (
        "prometheus",
        "the metrics suites scrape through a real Prometheus",
    ),
    ("promtool", "checks and unit-tests the alert rules"),
    ("node", "type-checks the dashboards against @grafana/schema"),
    ("npm", "installs @grafana/schema"),
    ("python3", "grafana/build.py and the Helm check's venv"),
    ("skopeo", "reads the OCI layouts"),
    ("umoci", "unpacks the OCI layouts"),
    ("oci-image-tool", "validates the OCI layouts"),
    ("ldd", "finds the shared libraries of the image binaries"),
    ("nix", "evaluates the flake offline"),
    ("nix-instantiate", "parses the Nix files"),
    ("git", "copies the tracked files for the flake check"),
    ("containerd", "the local node's container runtime"),
    ("ctr", "imports images into the local node"),
    ("runc", "the local node's OCI runtime"),
    ("conntrack", "kube-proxy"),
    ("iptables-save", "the cluster's leak check"),
    ("ip", "the local node's network"),
    ("unshare", "the local node's namespaces"),
];

/// Programs run by name that are not tools to provide: the machine's package manager (which the
/// Nix shell makes unnecessary) and coreutils, which every shell has.
#[cfg(test)]
pub(crate) const NOT_TOOLS: &[&str] = &["apt-get", "sudo", "cp", "chmod", "kill", "sleep"];

/// Tools nixpkgs does not package, with what stands in: the flake check accepts their absence
/// from the shell only with this reason, and the README says it.
pub(crate) const NOT_IN_NIXPKGS: &[(&str, &str)] = &[(
    "oci-image-tool",
    "opencontainers/image-tools is unmaintained and not in nixpkgs; `cargo xtask images --check` \
     needs Debian's package for it",
)];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// The names in `find_on_path("…")`, `Command::new("…")` and `pick(…, find_on_path("…")…)`
    /// calls of every Rust file under `dir`.
    fn lookups(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                lookups(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for marker in ["find_on_path(\"", "Command::new(\""] {
                    for (at, _) in text.match_indices(marker) {
                        let rest = &text[at + marker.len()..];
                        if let Some(end) = rest.find('"') {
                            out.insert(rest[..end].to_owned());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_program_xtask_or_the_harness_looks_for_is_listed() {
        let root = harness::repo_root();
        let mut found = BTreeSet::new();
        for dir in ["xtask/src", "tests/src"] {
            lookups(&root.join(dir), &mut found);
        }
        // This file names programs inside strings of its own test; skip the pattern text itself.
        found.retain(|p| !p.is_empty() && !p.contains('…'));
        assert!(found.contains("umoci") && found.contains("go"), "{found:?}");
        let listed: BTreeSet<&str> = TOOLS.iter().map(|(p, _)| *p).collect();
        let missing: Vec<&String> = found
            .iter()
            .filter(|p| !listed.contains(p.as_str()) && !NOT_TOOLS.contains(&p.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "looked up but not in tools::TOOLS (and so maybe not in the Nix shell): {missing:?}"
        );
    }

    #[test]
    fn the_exceptions_are_tools() {
        for (program, _) in NOT_IN_NIXPKGS {
            assert!(TOOLS.iter().any(|(p, _)| p == program), "{program}");
        }
    }
}
