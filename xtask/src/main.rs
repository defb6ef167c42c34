//! Repository automation.
//!
//! `cargo xtask codegen` regenerates `crates/api/operations/src/generated.rs`
//! from the botocore models in `models/`, after merging OpenTrail's overlay
//! `models/opentrail-extensions.json` into them (extra shapes and extra members of
//! botocore shapes, such as `Event.OpenTrailProvenance`; see `codegen::apply_extensions`);
//! `cargo xtask codegen --check` only compares and exits 1 when the committed file is stale.

mod codegen;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask codegen [--check]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["codegen"] => codegen::run(&workspace_root(), false),
        ["codegen", "--check"] => codegen::run(&workspace_root(), true),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
