//! Matching a request against a module's declared routes.

use plinth_module_sdk::manifest::{Method, RouteSegment};
use plinth_module_sdk::{Manifest, Permission};

/// The route a request matched and the permission it needs (none: any user of an enabled tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub permission: Option<&'a Permission>,
}

/// With no routes declared every path is open; with routes declared an undeclared path or
/// method is `None` (a 404). Literal segments beat parameters, parameters beat `{proxy+}`.
///
/// On every request: it allocates nothing (the path's segments are walked, not collected).
pub fn match_route<'a>(manifest: &'a Manifest, method: &str, path: &str) -> Option<RouteMatch<'a>> {
    if manifest.routes.is_empty() {
        return Some(RouteMatch { permission: None });
    }
    manifest
        .routes
        .iter()
        .filter(|route| route.methods.iter().any(|m| method_matches(*m, method)))
        .filter_map(|route| score(route.path.segments(), path).map(|s| (s, route)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, route)| RouteMatch {
            permission: route.permission.as_ref(),
        })
}

fn method_matches(declared: Method, method: &str) -> bool {
    declared == Method::Any || declared.as_str().eq_ignore_ascii_case(method)
}

/// How specific a match is (higher wins), or `None` when the path does not match.
fn score(pattern: &[RouteSegment], path: &str) -> Option<u32> {
    let mut path = path.split('/').filter(|s| !s.is_empty());
    let mut score = 0;
    for segment in pattern {
        match segment {
            RouteSegment::Greedy(_) => return path.next().map(|_| score),
            RouteSegment::Literal(text) => {
                if path.next()? != text.as_str() {
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
        match_route(&manifest(), method, path).map(|m| m.permission.map(ToString::to_string))
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
}
