//! `plinth module new NAME [--sdk-path PATH]`: writes a new module repository in `./NAME` —
//! manifest, backend crate on the module SDK with tests, Dockerfile, cargo-lambda settings and
//! README — from the templates in `local/templates/module/`, which build and pass their tests
//! as generated.
//!
//! The SDK is not on a package registry: the backend depends on it by path, on the checkout
//! this `plinth` was built from (`cargo install --path local` builds it in place) unless
//! `--sdk-path` names another, and starts from that checkout's `Cargo.lock`, so it builds with
//! the dependency versions the SDK is tested with (and, with a shared target folder, reuses
//! them already built).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use plinth_module_sdk::ModuleName;

use super::Exit;

/// Arguments of `plinth module`.
#[derive(Debug, clap::Args)]
pub struct ModuleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ModuleCommand,
}

/// The `module` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModuleCommand {
    /// Write a new module repository in ./NAME, ready to build and test.
    ///
    /// Exit status: 0 written, 2 invalid name, existing folder or unusable --sdk-path.
    New(NewArgs),
}

/// Arguments of `plinth module new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The module's name: lowercase letters, digits and `-`, e.g. `hr` or `time-off`.
    pub name: String,
    /// The module SDK to build on (a checkout's `module-sdk` folder). Default: the one in the
    /// checkout this `plinth` was built from.
    #[arg(long, value_name = "PATH", env = "PLINTH_SDK_PATH")]
    pub sdk_path: Option<PathBuf>,
}

/// The templates, by path in the new repository.
const TEMPLATES: [(&str, &str); 11] = [
    (
        "manifest.json",
        include_str!("../../templates/module/manifest.json"),
    ),
    (
        "Cargo.toml",
        include_str!("../../templates/module/Cargo.toml"),
    ),
    (
        "README.md",
        include_str!("../../templates/module/README.md"),
    ),
    (
        "Dockerfile",
        include_str!("../../templates/module/Dockerfile"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/module/gitignore"),
    ),
    (
        "backend/Cargo.toml",
        include_str!("../../templates/module/backend/Cargo.toml"),
    ),
    (
        "backend/src/lib.rs",
        include_str!("../../templates/module/backend/src/lib.rs"),
    ),
    (
        "backend/src/main.rs",
        include_str!("../../templates/module/backend/src/main.rs"),
    ),
    (
        "backend/tests/api.rs",
        include_str!("../../templates/module/backend/tests/api.rs"),
    ),
    (
        "frontend/module.js",
        include_str!("../../templates/module/frontend/module.js"),
    ),
    (".dockerignore", "target\n"),
];

pub(super) fn run(args: ModuleArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    match args.command {
        ModuleCommand::New(args) => new(&args, Path::new("."), out, err),
    }
}

/// Writes the repository for `args` under `parent`.
fn new(
    args: &NewArgs,
    parent: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    let name = match ModuleName::parse(&args.name) {
        Ok(name) => name,
        Err(error) => {
            writeln!(err, "error: {error}")?;
            return Ok(Exit::Failure);
        }
    };
    let sdk = match find_sdk(args.sdk_path.as_deref()) {
        Ok(sdk) => sdk,
        Err(message) => {
            writeln!(err, "error: {message}")?;
            return Ok(Exit::Failure);
        }
    };
    let root = parent.join(name.as_str());
    if root.exists() {
        writeln!(
            err,
            "error: {} exists already; choose another name or remove it",
            root.display()
        )?;
        return Ok(Exit::Failure);
    }
    let values = Values::new(&name, sdk.dependency());
    for (path, template) in TEMPLATES {
        let file = root.join(path);
        if let Some(folder) = file.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&file, values.fill(template))?;
    }
    // Cargo keeps the versions the lock names and drops what the module does not use.
    if let Some(lock) = sdk.lock_file() {
        std::fs::copy(lock, root.join("Cargo.lock"))?;
    }
    let shown = root.display();
    writeln!(out, "Created module `{name}` in {shown}")?;
    writeln!(out, "  on the module SDK in {}", sdk.path.display())?;
    writeln!(
        out,
        "Next, with `plinth up` running: cd {shown} && plinth module dev"
    )?;
    writeln!(
        out,
        "  (builds, installs and enables it for tenant acme, prints a curl that calls it, and \
         reinstalls on every change; `cargo test` runs its tests)"
    )?;
    Ok(Exit::Success)
}

/// The module SDK a new module builds on.
#[derive(Debug)]
struct Sdk {
    /// Its folder, absolute.
    path: PathBuf,
}

impl Sdk {
    /// The backend's dependency line on it.
    fn dependency(&self) -> String {
        // TOML basic strings take `\` as an escape: keep Windows paths literal.
        format!("plinth-module-sdk = {{ path = '{}' }}", self.path.display())
    }

    /// The lock file of the workspace it belongs to, if there is one.
    fn lock_file(&self) -> Option<PathBuf> {
        let lock = self.path.parent()?.join("Cargo.lock");
        lock.is_file().then_some(lock)
    }
}

/// The SDK this `plinth` was built beside: `module-sdk` in its checkout.
fn built_beside() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../module-sdk")
}

/// `--sdk-path` when given, else the SDK of the checkout this `plinth` was built from.
fn find_sdk(sdk_path: Option<&Path>) -> Result<Sdk, String> {
    let Some(path) = sdk_path else {
        let path = built_beside();
        return sdk_at(&path).map_err(|why| {
            format!(
                "the module SDK is not on a package registry, and the checkout this plinth was \
                 built from has none ({why}): pass --sdk-path with a Plinth checkout's \
                 module-sdk folder"
            )
        });
    };
    sdk_at(path).map_err(|why| format!("--sdk-path: {why}"))
}

fn sdk_at(path: &Path) -> Result<Sdk, String> {
    let manifest = path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    if !text.contains("name = \"plinth-module-sdk\"") {
        return Err(format!(
            "{} is not the plinth-module-sdk crate",
            path.display()
        ));
    }
    let path = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Sdk { path })
}

/// What the templates' `{{…}}` placeholders stand for.
struct Values {
    name: String,
    display_name: String,
    krate: String,
    sdk_dependency: String,
}

impl Values {
    fn new(name: &ModuleName, sdk_dependency: String) -> Self {
        let display_name = name
            .as_str()
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            name: name.to_string(),
            display_name,
            krate: name.as_str().replace('-', "_"),
            sdk_dependency,
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{display_name}}", &self.display_name)
            .replace("{{crate}}", &self.krate)
            .replace("{{sdk_dependency}}", &self.sdk_dependency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(
        name: &str,
        sdk_path: Option<PathBuf>,
    ) -> (tempfile::TempDir, Exit, String, String) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let args = NewArgs {
            name: name.to_owned(),
            sdk_path,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let exit = new(&args, dir.path(), &mut out, &mut err).expect("output written");
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8");
        (dir, exit, text(out), text(err))
    }

    #[test]
    fn a_new_module_has_a_valid_manifest_and_no_placeholders_left() {
        let (dir, exit, _, err) = generate("time-off", None);
        assert_eq!(exit, Exit::Success, "{err}");
        let root = dir.path().join("time-off");
        for (path, _) in TEMPLATES {
            let text = std::fs::read_to_string(root.join(path)).expect("written");
            assert!(!text.contains("{{"), "{path} has a placeholder left");
        }
        let manifest = std::fs::read_to_string(root.join("manifest.json")).expect("written");
        let manifest = plinth_module_sdk::Manifest::from_json_str(&manifest).expect("valid");
        assert_eq!(manifest.display_name, "Time Off");
        assert_eq!(manifest.backend.api_prefix, "/api/v1/time-off");
        let main = std::fs::read_to_string(root.join("backend/src/main.rs")).expect("written");
        assert!(main.contains("use time_off::{App, manifest, module};"));
    }

    /// Finding 1: without flags the backend named a crate no registry has.
    #[test]
    fn a_new_module_finds_the_sdk_of_its_checkout_without_flags() {
        let (dir, exit, out, err) = generate("time-off", None);
        assert_eq!(exit, Exit::Success, "{err}");
        let root = dir.path().join("time-off");
        let cargo = std::fs::read_to_string(root.join("backend/Cargo.toml")).expect("written");
        let sdk = std::fs::canonicalize(built_beside()).expect("this checkout's SDK");
        assert!(
            cargo.contains(&format!(
                "plinth-module-sdk = {{ path = '{}' }}",
                sdk.display()
            )),
            "{cargo}"
        );
        assert!(
            root.join("Cargo.lock").is_file(),
            "the checkout's lock copied"
        );
        assert!(
            out.contains("cd ") && out.contains(" && plinth module dev\n"),
            "{out}"
        );
        assert!(!out.contains("cargo test\n"), "{out}");
    }

    #[test]
    fn the_sdk_path_becomes_an_absolute_path_dependency() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../module-sdk");
        let (dir, exit, out, _) = generate("hr", Some(sdk.clone()));
        assert_eq!(exit, Exit::Success);
        assert!(out.starts_with("Created module `hr` in "), "{out}");
        let cargo =
            std::fs::read_to_string(dir.path().join("hr/backend/Cargo.toml")).expect("written");
        let absolute = std::fs::canonicalize(sdk).expect("the SDK folder");
        assert!(cargo.contains(&format!(
            "plinth-module-sdk = {{ path = '{}' }}",
            absolute.display()
        )));
    }

    #[test]
    fn bad_names_existing_folders_and_wrong_sdk_paths_are_refused() {
        let (_, exit, _, err) = generate("Tenants", None);
        assert_eq!(exit, Exit::Failure);
        assert!(
            err.starts_with("error: ") && err.contains("Tenants"),
            "{err}"
        );

        let (dir, _, _, _) = generate("hr", None);
        let args = NewArgs {
            name: "hr".into(),
            sdk_path: None,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            new(&args, dir.path(), &mut out, &mut err).unwrap(),
            Exit::Failure
        );
        assert!(
            String::from_utf8(err)
                .unwrap()
                .ends_with("exists already; choose another name or remove it\n")
        );

        let not_sdk = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
        let (_, exit, _, err) = generate("hr", Some(not_sdk));
        assert_eq!(exit, Exit::Failure);
        assert!(
            err.starts_with("error: --sdk-path: ")
                && err.ends_with("is not the plinth-module-sdk crate\n"),
            "{err}"
        );
    }
}
