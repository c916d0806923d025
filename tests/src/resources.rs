//! Renders the repository's Dapr resource files for one run.
//!
//! The files under `dapr/components/` are complete, loadable manifests with local defaults (so
//! `dapr run -f dapr/dapr.yaml` can use them as they are). A run on free ports only has to change
//! a few metadata values — the Redis address, the secrets file — so rendering parses each YAML
//! document and replaces `spec.metadata[name].value` of the named component, nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_yaml_ng::Value;

/// Broker profiles: which directory under `dapr/components/` supplies the `pubsub` component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Broker {
    /// Redis Streams (`pubsub.redis`), the default.
    #[default]
    Redis,
}

impl Broker {
    /// The profile directory name.
    pub fn profile(self) -> &'static str {
        match self {
            Self::Redis => "redis",
        }
    }
}

/// A rendered resources directory for daprd's `--resources-path`.
#[derive(Clone, Debug)]
pub struct Resources {
    dir: PathBuf,
}

/// `(component name, metadata name) -> value` replacements.
pub type Overrides = BTreeMap<(String, String), String>;

impl Resources {
    /// Copies every `*.yaml` from `sources` (in order) into `dest`, applying `overrides`.
    ///
    /// Fails if an override names a component/metadata pair that no file has, so a renamed
    /// component cannot silently leave a run pointing at the default ports.
    pub fn render(sources: &[PathBuf], dest: &Path, overrides: &Overrides) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dest)?;
        let mut used = BTreeMap::new();
        for src in sources {
            let mut files: Vec<PathBuf> = std::fs::read_dir(src)
                .with_context(|| format!("reading {}", src.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file)?;
                let rendered = render_documents(&text, overrides, &mut used)
                    .with_context(|| format!("rendering {}", file.display()))?;
                let name = file.file_name().context("file name")?;
                std::fs::write(dest.join(name), rendered)?;
            }
        }
        let unused: Vec<_> = overrides
            .keys()
            .filter(|k| !used.contains_key(*k))
            .collect();
        if !unused.is_empty() {
            bail!("overrides matched no component metadata: {unused:?}");
        }
        Ok(Self {
            dir: dest.to_path_buf(),
        })
    }

    /// The directory to pass as `--resources-path`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn render_documents(
    text: &str,
    overrides: &Overrides,
    used: &mut BTreeMap<(String, String), ()>,
) -> anyhow::Result<String> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let mut value = <Value as serde::Deserialize>::deserialize(doc)?;
        if value.get("kind").and_then(Value::as_str) == Some("Component") {
            let name = value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(items) = value
                .get_mut("spec")
                .and_then(|s| s.get_mut("metadata"))
                .and_then(Value::as_sequence_mut)
            {
                for item in items {
                    let Some(key) = item.get("name").and_then(Value::as_str).map(str::to_owned)
                    else {
                        continue;
                    };
                    let id = (name.clone(), key);
                    if let Some(new) = overrides.get(&id)
                        && let Some(map) = item.as_mapping_mut()
                    {
                        map.remove("secretKeyRef");
                        map.insert("value".into(), Value::String(new.clone()));
                        used.insert(id, ());
                    }
                }
            }
        }
        if !value.is_null() {
            out.push(serde_yaml_ng::to_string(&value)?);
        }
    }
    Ok(out.join("---\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBSUB: &str = "apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    secretKeyRef:
      name: redis
      key: password
";

    #[test]
    fn replaces_only_the_named_metadata() {
        let mut overrides = Overrides::new();
        overrides.insert(
            ("pubsub".into(), "redisHost".into()),
            "127.0.0.1:7000".into(),
        );
        overrides.insert(("pubsub".into(), "redisPassword".into()), "pw".into());
        let mut used = BTreeMap::new();
        let out = render_documents(PUBSUB, &overrides, &mut used).unwrap();
        let v: Value = serde_yaml_ng::from_str(&out).unwrap();
        let items = v["spec"]["metadata"].as_sequence().unwrap();
        assert_eq!(items[0]["value"].as_str(), Some("127.0.0.1:7000"));
        assert_eq!(items[1]["value"].as_str(), Some("pw"));
        assert!(items[1].get("secretKeyRef").is_none());
        assert_eq!(v["spec"]["type"].as_str(), Some("pubsub.redis"));
        assert_eq!(used.len(), 2);
    }

    #[test]
    fn unknown_override_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("pubsub.yaml"), PUBSUB).unwrap();
        let mut overrides = Overrides::new();
        overrides.insert(("pubsub".into(), "redisHots".into()), "x".into());
        let err = Resources::render(&[src], &dir.path().join("out"), &overrides).unwrap_err();
        assert!(err.to_string().contains("redisHots"), "{err}");
    }
}
