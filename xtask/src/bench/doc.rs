//! BENCHMARKS.md is shared by the scenarios: each rewrites its own `## ` section and keeps the
//! others as they are.

/// `doc` with the section under `heading` (a `## ` line) replaced by `section`, or `section`
/// appended when there is none. The section runs to the next `## ` heading; every other
/// section stays as it is, in place.
pub(super) fn replace_section(doc: &str, heading: &str, section: &str) -> String {
    let start = if doc.starts_with(&format!("{heading}\n")) {
        Some(0)
    } else {
        doc.find(&format!("\n{heading}\n")).map(|at| at + 1)
    };
    let section = section.trim_end();
    match start {
        Some(start) => {
            let end = doc[start + heading.len()..]
                .find("\n## ")
                .map_or(doc.len(), |at| start + heading.len() + at + 1);
            let rest = &doc[end..];
            let gap = if rest.is_empty() { "\n" } else { "\n\n" };
            format!("{}{section}{gap}{rest}", &doc[..start])
        }
        None => {
            let doc = doc.trim_end();
            if doc.is_empty() {
                format!("{section}\n")
            } else {
                format!("{doc}\n\n{section}\n")
            }
        }
    }
}

/// Writes a scenario's `pictures` (paths relative to the repository) and puts `section` in
/// place of the one under `heading` in BENCHMARKS.md, leaving the other sections as they are.
pub(super) fn write_section(
    heading: &str,
    section: &str,
    pictures: &[(&str, String)],
) -> anyhow::Result<()> {
    let root = harness::repo_root();
    for (path, svg) in pictures {
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, svg)?;
    }
    let md = root.join("BENCHMARKS.md");
    let previous = std::fs::read_to_string(&md).unwrap_or_default();
    std::fs::write(&md, replace_section(&previous, heading, section))?;
    let paths: Vec<&str> = pictures.iter().map(|(path, _)| *path).collect();
    crate::step::info(&format!("wrote {} and {}", md.display(), paths.join(", ")));
    Ok(())
}

/// A warning when the one-minute load average was half the CPU count or more: then other work
/// shared the CPUs with the processes measured, and single figures say little.
pub(super) fn busy_note(load_average: &str, cpus: usize) -> &'static str {
    let one_minute = load_average
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok());
    match one_minute {
        Some(load) if load >= cpus.max(1) as f64 / 2.0 => {
            " **The figures are noisy:** other work was using the CPUs at the same\n\
             time, so compare the shapes of the curves more than single numbers."
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Benchmarks\n\nintro\n\n## Results\n\nfigures\n\n\
                       ## Sidecar overhead in the cluster\n\nkept\n";
    const HEADING: &str = "## Data growth";

    #[test]
    fn a_missing_section_is_appended_and_the_rest_kept() {
        let out = replace_section(DOC, HEADING, "## Data growth\n\nnew\n");
        assert_eq!(out, format!("{DOC}\n## Data growth\n\nnew\n"));
        assert_eq!(
            replace_section("", HEADING, "## Data growth\nx"),
            "## Data growth\nx\n"
        );
    }

    #[test]
    fn only_the_section_itself_is_replaced() {
        let doc = format!("{DOC}\n## Data growth\n\nold\n\n### detail\n\nold too\n");
        let out = replace_section(&doc, HEADING, "## Data growth\n\nnew\n");
        assert_eq!(out, format!("{DOC}\n## Data growth\n\nnew\n"));

        let middle = "# B\n\n## Data growth\n\nold\n\n## After\n\nkept\n";
        assert_eq!(
            replace_section(middle, HEADING, "## Data growth\n\nnew"),
            "# B\n\n## Data growth\n\nnew\n\n## After\n\nkept\n"
        );
        // Rewriting twice changes nothing more.
        let once = replace_section(middle, HEADING, "## Data growth\n\nnew");
        assert_eq!(
            replace_section(&once, HEADING, "## Data growth\n\nnew"),
            once
        );
    }

    #[test]
    fn a_busy_machine_is_said_to_be() {
        assert!(busy_note("2.19 2.60 2.82", 2).contains("noisy"));
        assert_eq!(busy_note("0.20 0.30 0.40", 2), "");
        assert_eq!(busy_note("", 2), "");
    }

    #[test]
    fn a_heading_that_only_starts_alike_is_not_the_section() {
        let doc = "# B\n\n## Data growth curves elsewhere\n\nkept\n";
        let out = replace_section(doc, HEADING, "## Data growth\n\nnew");
        assert!(out.starts_with(doc), "{out}");
        assert!(out.ends_with("## Data growth\n\nnew\n"));
    }
}
