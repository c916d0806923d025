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
///
/// Services and tests only ever name the component `pubsub`; the profile decides which broker
/// the harness starts and which component file daprd loads (`docs/architecture.md`, "Brokers are swappable").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Broker {
    /// Redis Streams (`pubsub.redis`), the default.
    #[default]
    Redis,
    /// Apache Kafka in KRaft mode (`pubsub.kafka`).
    Kafka,
    /// RabbitMQ (`pubsub.rabbitmq`).
    RabbitMq,
}

/// The environment variable the end-to-end suites read their broker from.
pub const BROKER_ENV: &str = "TODO_BROKER";

impl Broker {
    /// Every profile, default first.
    pub const ALL: [Self; 3] = [Self::Redis, Self::Kafka, Self::RabbitMq];

    /// The profile directory name (also the `--broker` / `TODO_BROKER` value).
    pub fn profile(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Kafka => "kafka",
            Self::RabbitMq => "rabbitmq",
        }
    }

    /// The `pubsub` metadata item that points the component at the broker; the harness
    /// replaces its value with the address of the broker it started.
    pub fn address_metadata(self) -> &'static str {
        match self {
            Self::Redis => "redisHost",
            Self::Kafka => "brokers",
            Self::RabbitMq => "connectionString",
        }
    }

    /// The broker named by `TODO_BROKER` (default: Redis). An unknown name is an error rather
    /// than a silent fall-back, so a typo cannot make a "Kafka run" test Redis.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var(BROKER_ENV) {
            Ok(v) if !v.trim().is_empty() => v.parse(),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!("{BROKER_ENV}: {e}")),
        }
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.profile())
    }
}

impl std::str::FromStr for Broker {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|b| b.profile().eq_ignore_ascii_case(s))
            .with_context(|| {
                let names: Vec<_> = Self::ALL.iter().map(|b| b.profile()).collect();
                format!(
                    "unknown broker `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
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

/// The `value` of metadata item `key` of component `component` in `file`.
pub fn metadata_value(file: &Path, component: &str, key: &str) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = <Value as serde::Deserialize>::deserialize(doc)?;
        if value["kind"].as_str() != Some("Component")
            || value["metadata"]["name"].as_str() != Some(component)
        {
            continue;
        }
        let found = value["spec"]["metadata"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|item| item["name"].as_str() == Some(key))
            .and_then(|item| item["value"].as_str());
        if let Some(found) = found {
            return Ok(found.to_owned());
        }
    }
    bail!(
        "{}: component `{component}` has no `{key}` value",
        file.display()
    )
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
    fn broker_names_round_trip() {
        for b in Broker::ALL {
            assert_eq!(b.profile().parse::<Broker>().unwrap(), b);
            assert!(
                crate::repo_root()
                    .join("dapr/components")
                    .join(b.profile())
                    .join("pubsub.yaml")
                    .is_file(),
                "no component file for {b}"
            );
        }
        assert_eq!("RabbitMQ".parse::<Broker>().unwrap(), Broker::RabbitMq);
        let err = "kafak".parse::<Broker>().unwrap_err().to_string();
        assert!(err.contains("redis, kafka, rabbitmq"), "{err}");
    }

    /// Every profile has a loadable `pubsub` component whose address the harness can replace,
    /// next to the common components (whose overrides must still apply).
    #[test]
    fn every_profile_renders_with_its_broker_address() {
        let components = crate::repo_root().join("dapr/components");
        for b in Broker::ALL {
            let dir = tempfile::tempdir().unwrap();
            let mut overrides = Overrides::new();
            overrides.insert(
                ("pubsub".into(), b.address_metadata().into()),
                "127.0.0.1:1".into(),
            );
            overrides.insert(
                ("secretstore".into(), "secretsFile".into()),
                "/x.json".into(),
            );
            Resources::render(
                &[components.join("common"), components.join(b.profile())],
                dir.path(),
                &overrides,
            )
            .unwrap_or_else(|e| panic!("{b}: {e:#}"));
            let text = std::fs::read_to_string(dir.path().join("pubsub.yaml")).unwrap();
            let v: Value = serde_yaml_ng::from_str(&text).unwrap();
            assert_eq!(v["metadata"]["name"].as_str(), Some("pubsub"), "{b}");
            // The profile names the component type: pubsub.redis, pubsub.kafka, pubsub.rabbitmq.
            assert_eq!(
                v["spec"]["type"].as_str(),
                Some(format!("pubsub.{b}").as_str())
            );
            assert!(text.contains("127.0.0.1:1"), "{b}: {text}");
        }
    }

    /// Every profile's `pubsub` lets exactly the owners of each topic publish and subscribe
    /// to it, as the contracts' operations say.
    #[test]
    fn every_profile_scopes_topics_to_their_owners() {
        let want = contracts::topic_access();
        for b in Broker::ALL {
            let path = crate::repo_root()
                .join("dapr/components")
                .join(b.profile())
                .join("pubsub.yaml");
            let item = |name: &str| {
                metadata_value(&path, "pubsub", name).unwrap_or_else(|e| panic!("{b}: {e:#}"))
            };
            assert_eq!(item("protectedTopics"), want.protected_topics, "{b}");
            assert_eq!(item("publishingScopes"), want.publishing_scopes, "{b}");
            assert_eq!(item("subscriptionScopes"), want.subscription_scopes, "{b}");
        }
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
