//! The committed `schemas/*.json` and `asyncapi.json` must be exactly what the code generates.
//!
//! They are what other teams and tools read, so a type change without regenerated files (or a
//! hand edit of a file) fails here rather than in a consumer.

use contracts::generate::{self, COMMAND};

#[test]
fn committed_files_match_the_code() {
    let drifts = generate::check(generate::crate_dir()).expect("reading the committed files");
    let listing: Vec<String> = drifts.iter().map(|d| format!("  {d}")).collect();
    assert!(
        drifts.is_empty(),
        "the committed contract files differ from what the code generates; run `{COMMAND}` \
         and commit the result:\n{}",
        listing.join("\n")
    );
}
