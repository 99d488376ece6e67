//! `plinth manifest …`: work with module manifests.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use plinth_module_sdk::{Manifest, validate_manifest};
use serde_json::Value;

use super::Exit;

/// Arguments of `plinth manifest`.
#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// What to do with a manifest.
    #[command(subcommand)]
    pub command: ManifestCommand,
}

/// The `manifest` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ManifestCommand {
    /// Check a manifest.json against the module contract, reporting every problem.
    ///
    /// Exit status: 0 valid, 1 problems (one `path: message` line each on stdout),
    /// 2 unreadable file or not JSON.
    Validate {
        /// The manifest file.
        file: PathBuf,
    },
}

pub(super) fn run(
    args: ManifestArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    match args.command {
        ManifestCommand::Validate { file } => validate(&file, out, err),
    }
}

fn validate(file: &Path, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let shown = file.display();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            writeln!(err, "error: cannot read {shown}: {error}")?;
            return Ok(Exit::Failure);
        }
    };
    let document: Value = match serde_json::from_str(&text) {
        Ok(document) => document,
        Err(error) => {
            writeln!(err, "error: {shown} is not valid JSON: {error}")?;
            return Ok(Exit::Failure);
        }
    };
    match validate_manifest(&document) {
        Ok(manifest) => {
            writeln!(out, "{}", summary(&manifest))?;
            Ok(Exit::Success)
        }
        Err(problems) => {
            for problem in &problems {
                writeln!(out, "{problem}")?;
            }
            let count = counted(problems.len(), "problem");
            writeln!(err, "error: {shown} is not a valid manifest ({count})")?;
            Ok(Exit::Problems)
        }
    }
}

/// `financial 1.2.0: valid (microservice backend, 5 permissions, 3 routes)`.
fn summary(manifest: &Manifest) -> String {
    format!(
        "{} {}: valid ({} backend, {}, {})",
        manifest.name,
        manifest.version,
        manifest.backend.kind,
        counted(manifest.permissions.len(), "permission"),
        counted(manifest.routes.len(), "route"),
    )
}

fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_text(text: &str) -> (Exit, String, String) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("manifest.json");
        std::fs::write(&file, text).expect("written");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let exit = validate(&file, &mut out, &mut err).expect("output written");
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
        let err = text(err).replace(&file.display().to_string(), "manifest.json");
        (exit, text(out), err)
    }

    #[test]
    fn a_valid_manifest_gets_a_one_line_summary() {
        let (exit, out, err) = validate_text(
            r#"{"name": "hr", "display_name": "HR", "version": "0.1.0",
                "backend": {"type": "lambda", "api_prefix": "/api/v1/hr", "entry_point": "bootstrap"},
                "permissions": ["hr:people.read"]}"#,
        );
        assert_eq!(exit, Exit::Success);
        assert_eq!(
            out,
            "hr 0.1.0: valid (lambda backend, 1 permission, 0 routes)\n"
        );
        assert_eq!(err, "");
    }

    #[test]
    fn problems_go_to_stdout_one_per_line() {
        let (exit, out, err) = validate_text(r#"{"name": "hr"}"#);
        assert_eq!(exit, Exit::Problems);
        assert_eq!(
            out,
            "$: missing required field `display_name`\n$: missing required field `version`\n$: missing required field `backend`\n"
        );
        assert_eq!(
            err,
            "error: manifest.json is not a valid manifest (3 problems)\n"
        );
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let (exit, out, err) =
            validate_text("{\n  \"name\": \"hr\"\n  \"version\": \"1.0.0\"\n}\n");
        assert_eq!(exit, Exit::Failure);
        assert_eq!(out, "");
        assert_eq!(
            err,
            "error: manifest.json is not valid JSON: expected `,` or `}` at line 3 column 3\n"
        );
    }

    #[test]
    fn a_missing_file_is_a_failure() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let exit = validate(Path::new("/nonexistent/manifest.json"), &mut out, &mut err)
            .expect("output written");
        assert_eq!(exit, Exit::Failure);
        let err = String::from_utf8(err).expect("UTF-8");
        assert!(
            err.starts_with("error: cannot read /nonexistent/manifest.json: "),
            "{err}"
        );
    }
}
