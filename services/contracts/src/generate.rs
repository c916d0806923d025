//! Rendering, writing and checking the committed schema files.
//!
//! One implementation for the `generate-schemas` binary (which writes) and
//! `tests/schemas_in_sync.rs` (which checks), so both agree on paths and formatting: pretty
//! JSON with sorted keys and a trailing newline. Files that already match are not rewritten.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{asyncapi, json_schemas};

/// The command that regenerates the committed files.
pub const COMMAND: &str = "cargo run -p contracts --bin generate-schemas";
/// Directory (relative to the crate) holding one `data` schema per event type.
pub const SCHEMAS_DIR: &str = "schemas";
/// File (relative to the crate) holding the AsyncAPI document.
pub const ASYNCAPI_FILE: &str = "asyncapi.json";

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the crate directory, e.g. `schemas/com.todo.task.created.v1.json`.
    pub path: PathBuf,
    /// The exact file contents.
    pub contents: String,
}

/// How a directory differs from what the code generates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// A generated file is absent.
    Missing(PathBuf),
    /// A file's contents differ from the generated ones.
    Differs(PathBuf),
    /// A `.json` file under `schemas/` that the code no longer generates.
    Stale(PathBuf),
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(path) => write!(f, "{} is missing", path.display()),
            Self::Differs(path) => write!(f, "{} is out of date", path.display()),
            Self::Stale(path) => write!(f, "{} is no longer generated", path.display()),
        }
    }
}

/// The crate's own directory, where the committed files live.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Pretty JSON with a trailing newline; keys come out in the order of `value`'s maps.
fn render(value: &Value) -> String {
    format!("{value:#}\n")
}

/// Every file the crate commits: the `data` schemas, then the AsyncAPI document.
pub fn files() -> Vec<GeneratedFile> {
    let mut files: Vec<GeneratedFile> = json_schemas()
        .into_iter()
        .map(|(name, schema)| GeneratedFile {
            path: Path::new(SCHEMAS_DIR).join(name),
            contents: render(&schema),
        })
        .collect();
    files.push(GeneratedFile {
        path: PathBuf::from(ASYNCAPI_FILE),
        contents: render(&asyncapi()),
    });
    files
}

/// How the files under `dir` differ from [`files`]; empty when in sync.
pub fn check(dir: &Path) -> io::Result<Vec<Drift>> {
    drifts(dir, &files())
}

fn drifts(dir: &Path, generated: &[GeneratedFile]) -> io::Result<Vec<Drift>> {
    let mut drifts = Vec::new();
    for file in generated {
        match fs::read_to_string(dir.join(&file.path)) {
            Ok(existing) if existing == file.contents => {}
            Ok(_) => drifts.push(Drift::Differs(file.path.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                drifts.push(Drift::Missing(file.path.clone()));
            }
            Err(e) => return Err(e),
        }
    }
    let expected: BTreeSet<&Path> = generated.iter().map(|f| f.path.as_path()).collect();
    let entries = match fs::read_dir(dir.join(SCHEMAS_DIR)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(drifts),
        Err(e) => return Err(e),
    };
    let mut stale = Vec::new();
    for entry in entries {
        let path = Path::new(SCHEMAS_DIR).join(entry?.file_name());
        if path.extension().is_some_and(|ext| ext == "json") && !expected.contains(path.as_path()) {
            stale.push(path);
        }
    }
    stale.sort();
    drifts.extend(stale.into_iter().map(Drift::Stale));
    Ok(drifts)
}

/// Brings `dir` in sync with [`files`]: writes missing or changed files, deletes stale
/// schemas. Returns what it fixed (empty when everything already matched).
pub fn write(dir: &Path) -> io::Result<Vec<Drift>> {
    let generated = files();
    let drifts = drifts(dir, &generated)?;
    if drifts.is_empty() {
        return Ok(drifts);
    }
    fs::create_dir_all(dir.join(SCHEMAS_DIR))?;
    for drift in &drifts {
        match drift {
            Drift::Missing(path) | Drift::Differs(path) => {
                if let Some(file) = generated.iter().find(|f| &f.path == path) {
                    fs::write(dir.join(path), &file.contents)?;
                }
            }
            Drift::Stale(path) => fs::remove_file(dir.join(path))?,
        }
    }
    Ok(drifts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_deterministic_pretty_and_newline_terminated() {
        let first = files();
        assert_eq!(first, files());
        assert_eq!(first.len(), crate::CONTRACTS.len() + 1);
        for file in &first {
            assert!(file.contents.ends_with("}\n"), "{}", file.path.display());
            assert!(
                file.contents.starts_with("{\n  \""),
                "{}",
                file.path.display()
            );
        }
    }

    #[test]
    fn write_then_check_round_trips_in_a_scratch_dir() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        fs::create_dir_all(dir.join(SCHEMAS_DIR)).unwrap();
        fs::write(dir.join(SCHEMAS_DIR).join("com.todo.gone.v1.json"), "{}\n").unwrap();
        fs::write(dir.join(SCHEMAS_DIR).join("README.md"), "kept\n").unwrap();

        let before = check(dir).unwrap();
        assert_eq!(before.len(), files().len() + 1, "{before:?}");
        assert!(before.contains(&Drift::Stale(
            Path::new(SCHEMAS_DIR).join("com.todo.gone.v1.json")
        )));
        assert_eq!(write(dir).unwrap(), before);
        assert_eq!(check(dir).unwrap(), []);
        assert!(write(dir).unwrap().is_empty());
        assert!(dir.join(SCHEMAS_DIR).join("README.md").exists());

        fs::write(dir.join(ASYNCAPI_FILE), "{}\n").unwrap();
        assert_eq!(
            check(dir).unwrap(),
            [Drift::Differs(PathBuf::from(ASYNCAPI_FILE))]
        );
    }
}
