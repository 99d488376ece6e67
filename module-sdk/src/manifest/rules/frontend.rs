//! Rules for `frontend`: a kind the console knows how to load, and an entry file that can be
//! inside the bundle.

use super::{Context, text};
use crate::manifest::problem::Problems;

/// The frontends the console loads: the first two run in its page (ES modules), the last two
/// in a sandboxed frame.
pub const FRONTEND_KINDS: [&str; 4] = ["spa-module", "es-module", "micro-frontend", "iframe"];

/// The longest path of a file in a bundle.
pub const MAX_BUNDLE_PATH: usize = 200;

/// Whether `path` names a file inside a bundle's folder: `/`-separated segments of letters,
/// digits, `.`, `-` and `_`, none empty, none starting with `.` (so no `..` and no hidden
/// file), no absolute path, no `\`.
///
/// # Errors
/// Why `path` is not such a path.
pub fn plain_bundle_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_BUNDLE_PATH {
        return Err(format!(
            "must be 1 to {MAX_BUNDLE_PATH} characters, relative to the bundle's folder"
        ));
    }
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if path.split('/').all(plain) {
        Ok(())
    } else {
        Err(format!(
            "{path:?} is not a plain path inside the bundle's folder (segments of letters, \
             digits, '.', '-' and '_', none empty or starting with '.')"
        ))
    }
}

pub(super) fn check(cx: &Context<'_>, problems: &mut Problems) {
    let Some(frontend) = cx.section("frontend").filter(|f| f.is_object()) else {
        return;
    };
    let at = cx.root.key("frontend");
    if let Some(kind) = text(frontend, "type")
        && !FRONTEND_KINDS.contains(&kind)
    {
        problems.add(
            &at.key("type"),
            format!(
                "`{kind}` is not a frontend the console loads: `spa-module` or `es-module` (an \
                 ES module run in the console's page), `micro-frontend` or `iframe` (a page \
                 in a sandboxed frame)"
            ),
        );
    }
    if let Some(entry) = text(frontend, "entry_point")
        && let Err(why) = plain_bundle_path(entry)
    {
        problems.add(&at.key("entry_point"), why);
    }
}
