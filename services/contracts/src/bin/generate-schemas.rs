//! `generate-schemas`: writes the contracts crate's JSON Schemas and AsyncAPI document.
//!
//! A thin wrapper over `contracts::generate`, which `tests/schemas_in_sync.rs` uses too, so
//! what this writes is exactly what the test expects.

use std::io::{self, Write};
use std::process::ExitCode;

use contracts::generate::{self, ASYNCAPI_FILE, COMMAND, SCHEMAS_DIR};

fn help() -> String {
    format!(
        "generate-schemas: write the todo-dapr event contracts as files\n\
         \n\
         Usage: {COMMAND} [-- --check]\n\
         \n\
         Writes, from the types in the `contracts` crate and into that crate's directory\n\
         ({dir}):\n\
         \x20 {SCHEMAS_DIR}/<event type>.json   JSON Schema (draft-07) of each event's `data`\n\
         \x20 {ASYNCAPI_FILE}                     AsyncAPI 3.0 document of the topics and messages\n\
         Unchanged files are left alone; schemas no longer generated are deleted.\n\
         \n\
         Options:\n\
         \x20 --check     write nothing; exit 1 and list the files that differ\n\
         \x20 -h, --help  print this help\n",
        dir = generate::crate_dir().display()
    )
}

fn emit(mut out: impl Write, text: &str) {
    // Nothing useful is left to do if the terminal is gone.
    let _ = out.write_all(text.as_bytes());
}

fn main() -> ExitCode {
    let mut check_only = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-h" | "--help" => {
                emit(io::stdout(), &help());
                return ExitCode::SUCCESS;
            }
            "--check" => check_only = true,
            other => {
                emit(
                    io::stderr(),
                    &format!("generate-schemas: unknown argument `{other}` (try --help)\n"),
                );
                return ExitCode::from(2);
            }
        }
    }

    let dir = generate::crate_dir();
    let result = if check_only {
        generate::check(dir)
    } else {
        generate::write(dir)
    };
    let drifts = match result {
        Ok(drifts) => drifts,
        Err(e) => {
            emit(
                io::stderr(),
                &format!("generate-schemas: {}: {e}\n", dir.display()),
            );
            return ExitCode::FAILURE;
        }
    };

    let mut report = String::new();
    for drift in &drifts {
        report.push_str(&format!("  {drift}\n"));
    }
    match (check_only, drifts.is_empty()) {
        (_, true) => emit(io::stdout(), "generate-schemas: files are up to date\n"),
        (false, false) => emit(
            io::stdout(),
            &format!("generate-schemas: updated\n{report}"),
        ),
        (true, false) => {
            emit(
                io::stderr(),
                &format!("generate-schemas: not in sync, run `{COMMAND}`:\n{report}"),
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
