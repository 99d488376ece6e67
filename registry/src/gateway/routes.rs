//! Matching a request against a module's declared routes.

use plinth_module_sdk::manifest::{Method, RouteSegment};
use plinth_module_sdk::{Manifest, Permission};

/// The route a request matched and the permission it needs (none: any user of an enabled tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub permission: Option<&'a Permission>,
}

/// Why a path matched no route the gateway can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMatch<'a> {
    /// No declared route takes the method and path (a 404).
    Undeclared,
    /// A segment the best route takes as a parameter reads as `literal` — a segment another
    /// route declares there — to a backend that ignores case or a `.suffix` (a 400).
    Ambiguous { segment: &'a str, literal: &'a str },
}

/// With no routes declared every path is open; with routes declared an undeclared path or
/// method is [`NoMatch::Undeclared`]. Literal segments beat parameters, parameters beat
/// `{proxy+}`. Routes are case-sensitive, and a path whose parameter a backend could read as
/// another route's literal (`/entries/EXPORT`, `/entries/export.json` beside
/// `/entries/export`) is [`NoMatch::Ambiguous`].
///
/// On every request: it allocates nothing (the path's segments are walked, not collected).
pub fn match_route<'a, 'p>(
    manifest: &'a Manifest,
    method: &str,
    path: &'p str,
) -> Result<RouteMatch<'a>, NoMatch<'p>>
where
    'a: 'p,
{
    if manifest.routes.is_empty() {
        return Ok(RouteMatch { permission: None });
    }
    let routes = || {
        manifest
            .routes
            .iter()
            .filter(|route| route.methods.iter().any(|m| method_matches(*m, method)))
    };
    let (best, route) = routes()
        .filter_map(|route| score(route.path.segments(), path, exact).map(|s| (s, route)))
        .max_by_key(|(s, _)| *s)
        .ok_or(NoMatch::Undeclared)?;
    let all_literal = route
        .path
        .segments()
        .iter()
        .all(|segment| matches!(segment, RouteSegment::Literal(_)));
    if !all_literal {
        // A route that matches only loosely, and would win if it matched: a backend that
        // matches loosely serves it instead.
        for other in routes() {
            let segments = other.path.segments();
            if score(segments, path, loose).is_some_and(|s| s >= best)
                && score(segments, path, exact).is_none()
                && let Some(ambiguous) = loose_only(segments, path)
            {
                return Err(ambiguous);
            }
        }
    }
    Ok(RouteMatch {
        permission: route.permission.as_ref(),
    })
}

fn method_matches(declared: Method, method: &str) -> bool {
    declared == Method::Any || declared.as_str().eq_ignore_ascii_case(method)
}

/// Whether a path segment is the literal, as the gateway matches: exactly.
fn exact(segment: &str, literal: &str) -> bool {
    segment == literal
}

/// Whether a backend matching loosely could take the segment for the literal: ignoring ASCII
/// case, or a suffix from the first `.` (Spring's suffix patterns: `export.json`).
fn loose(segment: &str, literal: &str) -> bool {
    let stem = segment.split_once('.').map_or(segment, |(stem, _)| stem);
    segment.eq_ignore_ascii_case(literal) || stem.eq_ignore_ascii_case(literal)
}

/// The first segment `pattern` takes loosely but not exactly, as the ambiguity to name.
fn loose_only<'a>(pattern: &'a [RouteSegment], path: &'a str) -> Option<NoMatch<'a>> {
    let path = path.split('/').filter(|s| !s.is_empty());
    pattern
        .iter()
        .zip(path)
        .find_map(|(segment, taken)| match segment {
            RouteSegment::Literal(literal) if !exact(taken, literal) => Some(NoMatch::Ambiguous {
                segment: taken,
                literal: literal.as_str(),
            }),
            _ => None,
        })
}

/// How specific a match is (higher wins), or `None` when the path does not match; literal
/// segments compared with `same`.
fn score(pattern: &[RouteSegment], path: &str, same: fn(&str, &str) -> bool) -> Option<u32> {
    let mut path = path.split('/').filter(|s| !s.is_empty());
    let mut score = 0;
    for segment in pattern {
        match segment {
            RouteSegment::Greedy(_) => return path.next().map(|_| score),
            RouteSegment::Literal(text) => {
                if !same(path.next()?, text.as_str()) {
                    return None;
                }
                score += 3;
            }
            RouteSegment::Param(_) => {
                path.next()?;
                score += 2;
            }
        }
    }
    path.next().is_none().then_some(score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Manifest {
        let document = json!({
            "name": "financial", "display_name": "F", "version": "1.0.0",
            "backend": {"type": "microservice", "api_prefix": "/api/v1/financial"},
            "permissions": ["financial:invoices.read", "financial:invoices.write", "financial:reports.read"],
            "routes": [
                {"path": "/invoices", "methods": ["GET"], "permission": "financial:invoices.read"},
                {"path": "/invoices", "methods": ["POST"], "permission": "financial:invoices.write"},
                {"path": "/invoices/{id}", "methods": ["GET"], "permission": "financial:invoices.read"},
                {"path": "/invoices/summary", "methods": ["GET"]},
                {"path": "/reports/{proxy+}", "methods": ["ANY"], "permission": "financial:reports.read"}
            ]
        });
        plinth_module_sdk::validate_manifest(&document).unwrap()
    }

    fn needs(method: &str, path: &str) -> Option<Option<String>> {
        match_route(&manifest(), method, path)
            .ok()
            .map(|m| m.permission.map(ToString::to_string))
    }

    #[test]
    fn routes_match_by_method_and_the_most_specific_path() {
        assert_eq!(
            needs("GET", "/invoices"),
            Some(Some("financial:invoices.read".into()))
        );
        assert_eq!(
            needs("POST", "/invoices"),
            Some(Some("financial:invoices.write".into()))
        );
        assert_eq!(
            needs("GET", "/invoices/42"),
            Some(Some("financial:invoices.read".into()))
        );
        assert_eq!(
            needs("GET", "/invoices/summary"),
            Some(None),
            "a literal beats a parameter"
        );
        assert_eq!(
            needs("DELETE", "/reports/2026/q1"),
            Some(Some("financial:reports.read".into()))
        );
        assert_eq!(needs("DELETE", "/invoices/42"), None, "undeclared method");
        assert_eq!(needs("GET", "/accounts"), None, "undeclared path");
        assert_eq!(
            needs("GET", "/reports"),
            None,
            "{{proxy+}} needs at least one segment"
        );
        assert_eq!(needs("GET", "/invoices/42/lines"), None);
    }

    #[test]
    fn a_parameter_a_backend_could_read_as_a_literal_is_ambiguous() {
        let manifest = manifest();
        for (path, segment) in [
            ("/invoices/SUMMARY", "SUMMARY"),
            ("/invoices/Summary", "Summary"),
            ("/invoices/summary.json", "summary.json"),
            ("/invoices/SUMMARY.csv", "SUMMARY.csv"),
        ] {
            assert_eq!(
                match_route(&manifest, "GET", path),
                Err(NoMatch::Ambiguous {
                    segment,
                    literal: "summary"
                }),
                "{path}"
            );
        }
        for path in [
            "/invoices/42",
            "/invoices/summaryx",
            "/invoices/42.json",
            "/invoices/sum",
        ] {
            assert_eq!(
                needs("GET", path),
                Some(Some("financial:invoices.read".into())),
                "{path}"
            );
        }
        assert_eq!(needs("GET", "/invoices/summary"), Some(None));
        assert_eq!(
            match_route(&manifest, "DELETE", "/invoices/SUMMARY"),
            Err(NoMatch::Undeclared),
            "no route takes the method"
        );
        assert_eq!(
            match_route(&manifest, "GET", "/INVOICES"),
            Err(NoMatch::Undeclared),
            "literals are matched as declared"
        );
    }
}
