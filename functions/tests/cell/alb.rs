//! Shim of a module route's integration through the module listener: **moto stores API
//! Gateway's integrations and Elastic Load Balancing's listeners, rules and target groups,
//! but serves no request through them**. In a cell with a module listener
//! ([`crate::platform::Cell::start_with_module_listener`]) the `ApiGateway` shim asks this for
//! a module route the authorizer allowed; it reads what the installer stored on moto and does
//! what API Gateway and the load balancer would do with it:
//!
//! - API Gateway: the HTTP API's route for the request (`ANY {prefix}` exactly, or
//!   `ANY {prefix}/{proxy+}`, the most specific; read with `GetRoutes`), its integration
//!   (`GetIntegration`); only an `HTTP_PROXY` integration over a `VPC_LINK` whose URI is a
//!   listener's ARN is served here (anything else: `None`, and the `ApiGateway` shim picks
//!   the backend by name as in every other cell). The integration's request parameters are
//!   applied to the request's headers: `remove:header.*`, then `overwrite:header.*` and
//!   `append:header.*`, and `overwrite:path`, with the values `$context.authorizer.{key}`
//!   (the authorizer's context), `$context.identity.sourceIp` and `$request.path` — e.g.
//!   `X-Plinth-Version` from `$context.authorizer.version`. No other mapping is implemented.
//! - The load balancer: the listener's rules (`DescribeRules`) in priority order, the first
//!   whose every condition matches, else the listener's default action. Only `path-pattern`
//!   (case-sensitive, `*` and `?` wildcards) and `http-header` (name and value
//!   case-insensitive, wildcards) conditions are implemented — any other panics; only the
//!   `forward` (to its first target group) and `fixed-response` actions. A forward goes to the
//!   target group's first registered target (`DescribeTargetHealth`; no health checks, no
//!   balancing): a `lambda` target is invoked through the `LambdaFront` with the load
//!   balancer's event (single-value headers), an `ip` target is sent the request at
//!   `http://{ip}:{port}` (where the `Containers` shim runs a task's container). A target
//!   group with no target answers 503, as the load balancer does.

use aws_sdk_apigatewayv2::types::{ConnectionType, IntegrationType};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, Rule, TargetTypeEnum};
use serde_json::{Map, Value, json};

use crate::api_gateway::{Request, Response, answer_of, forward, gateway_answer};
use crate::platform::Cell;

/// The request as the integration sends it on: its path and headers after the mappings.
struct Mapped {
    path: String,
    headers: Map<String, Value>,
}

/// The module route's answer through the module listener, or `None` when the cell has no
/// listener or the route's integration does not go to one. `headers` are the request's
/// (lower-case names), `authorizer` the authorizer's context.
pub async fn through_the_module_listener(
    cell: &Cell,
    request: &Request,
    path: &str,
    query: &str,
    headers: &Map<String, Value>,
    authorizer: &Value,
) -> Option<Response> {
    let listener = cell.module_listener.as_ref()?;
    let api = aws_sdk_apigatewayv2::Client::new(&cell.sdk);
    let routes = api
        .get_routes()
        .api_id(&listener.api_id)
        .send()
        .await
        .expect("GetRoutes of the cell's HTTP API");
    let route = routes
        .items()
        .iter()
        .filter_map(|r| Some((r.route_key()?, r.target()?)))
        .filter_map(|(key, target)| Some((specificity(key, request.method, path)?, target)))
        .max_by_key(|(rank, _)| *rank)?;
    let integration_id = route.1.strip_prefix("integrations/")?;
    let integration = api
        .get_integration()
        .api_id(&listener.api_id)
        .integration_id(integration_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetIntegration {integration_id}: {e:?}"));
    let listener_arn = integration.integration_uri().unwrap_or_default();
    if integration.integration_type() != Some(&IntegrationType::HttpProxy)
        || integration.connection_type() != Some(&ConnectionType::VpcLink)
        || !listener_arn.starts_with("arn:aws:elasticloadbalancing:")
    {
        return None;
    }
    let parameters = integration
        .request_parameters()
        .cloned()
        .unwrap_or_default();
    let mapped = map_request(&parameters, path, headers, authorizer);
    Some(serve_on_listener(cell, listener_arn, request, &mapped, query).await)
}

/// How specifically route key `key` (`ANY /api/v1/m`, `ANY /api/v1/m/{proxy+}`) matches:
/// an exact path before a greedy one, a longer prefix before a shorter; `None` when it does
/// not.
fn specificity(key: &str, method: &str, path: &str) -> Option<(bool, usize)> {
    let (route_method, route_path) = key.split_once(' ')?;
    if route_method != "ANY" && route_method != method {
        return None;
    }
    match route_path.strip_suffix("/{proxy+}") {
        Some(base) => path
            .strip_prefix(base)
            .filter(|rest| rest.len() > 1 && rest.starts_with('/'))
            .map(|_| (false, base.len())),
        None => (route_path == path).then_some((true, route_path.len())),
    }
}

/// The integration's request parameters applied to the request: removals first, then
/// overwrites and appends (so a header both removed and overwritten is the overwrite's).
fn map_request(
    parameters: &std::collections::HashMap<String, String>,
    path: &str,
    headers: &Map<String, Value>,
    authorizer: &Value,
) -> Mapped {
    let value_of = |expression: &str| -> String {
        let expression = expression.trim();
        if expression == "''" {
            return String::new();
        }
        if let Some(key) = expression.strip_prefix("$context.authorizer.") {
            return authorizer[key].as_str().map_or_else(
                || authorizer[key].to_string().trim_matches('"').to_owned(),
                str::to_owned,
            );
        }
        match expression {
            "$context.identity.sourceIp" => "127.0.0.1".to_owned(),
            _ => expression
                .replace("${request.path}", path)
                .replace("$request.path", path),
        }
    };
    let mut mapped = Mapped {
        path: path.to_owned(),
        headers: headers.clone(),
    };
    let mut sorted: Vec<(&String, &String)> = parameters.iter().collect();
    sorted.sort_by_key(|(key, _)| (!key.starts_with("remove:"), key.as_str()));
    for (key, expression) in sorted {
        let Some((action, target)) = key.split_once(':') else {
            continue;
        };
        if target == "path" && action == "overwrite" {
            mapped.path = value_of(expression);
            continue;
        }
        let Some(name) = target.strip_prefix("header.") else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        match action {
            "remove" => {
                mapped.headers.remove(&name);
            }
            "overwrite" => {
                mapped.headers.insert(name, value_of(expression).into());
            }
            "append" => {
                let value = value_of(expression);
                let joined = match mapped.headers.get(&name).and_then(Value::as_str) {
                    Some(before) => format!("{before},{value}"),
                    None => value,
                };
                mapped.headers.insert(name, joined.into());
            }
            _ => {}
        }
    }
    mapped
}

/// What the load balancer answers for the request on `listener_arn`.
async fn serve_on_listener(
    cell: &Cell,
    listener_arn: &str,
    request: &Request,
    mapped: &Mapped,
    query: &str,
) -> Response {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cell.sdk);
    let described = elb
        .describe_rules()
        .listener_arn(listener_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeRules of {listener_arn}: {e:?}"));
    let mut rules: Vec<&Rule> = described
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .collect();
    rules.sort_by_key(|r| r.priority().and_then(|p| p.parse::<u32>().ok()));
    let default = described
        .rules()
        .iter()
        .find(|r| r.is_default() == Some(true));
    let chosen = rules
        .into_iter()
        .find(|rule| matches(rule, &mapped.path, &mapped.headers))
        .or(default);
    let Some(action) = chosen.and_then(|rule| rule.actions().first()) else {
        panic!("listener {listener_arn} has no default action: {described:?}");
    };
    act(cell, &elb, action, request, mapped, query).await
}

/// Whether every condition of `rule` matches.
fn matches(rule: &Rule, path: &str, headers: &Map<String, Value>) -> bool {
    rule.conditions()
        .iter()
        .all(|condition| match condition.field() {
            Some("path-pattern") => {
                let values = condition
                    .path_pattern_config()
                    .map_or_else(|| condition.values(), |c| c.values());
                values.iter().any(|pattern| glob(pattern, path, false))
            }
            Some("http-header") => {
                let Some(config) = condition.http_header_config() else {
                    return false;
                };
                let name = config
                    .http_header_name()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let Some(value) = headers.get(&name).and_then(Value::as_str) else {
                    return false;
                };
                config
                    .values()
                    .iter()
                    .any(|pattern| glob(pattern, value, true))
            }
            other => panic!(
                "the cell's load balancer shim matches only path-pattern and http-header \
                 conditions, not {other:?} (rule {:?})",
                rule.rule_arn()
            ),
        })
}

/// `*` (any run of characters) and `?` (one character) as the load balancer's conditions
/// have them.
fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if ignore_case {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (pattern, text) = (fold(pattern), fold(text));
    // Classic wildcard matching with a back-track point for the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The rule's action: a forward to its target group's first target, or a fixed response.
async fn act(
    cell: &Cell,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    action: &Action,
    request: &Request,
    mapped: &Mapped,
    query: &str,
) -> Response {
    match action.r#type() {
        Some(ActionTypeEnum::FixedResponse) => {
            let fixed = action
                .fixed_response_config()
                .expect("a fixed response's config");
            let mut headers = Map::new();
            if let Some(kind) = fixed.content_type() {
                headers.insert("content-type".into(), kind.into());
            }
            Response {
                status: fixed.status_code().unwrap_or("200").parse().unwrap_or(500),
                headers,
                body: fixed.message_body().unwrap_or_default().to_owned(),
                authorizer: None,
            }
        }
        Some(ActionTypeEnum::Forward) => {
            let group_arn = action
                .target_group_arn()
                .or_else(|| {
                    action
                        .forward_config()
                        .and_then(|f| f.target_groups().first())
                        .and_then(|g| g.target_group_arn())
                })
                .expect("a forward's target group");
            forward_to_group(cell, elb, group_arn, request, mapped, query).await
        }
        other => panic!("the cell's load balancer shim does not run {other:?} actions"),
    }
}

async fn forward_to_group(
    cell: &Cell,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    group_arn: &str,
    request: &Request,
    mapped: &Mapped,
    query: &str,
) -> Response {
    let groups = elb
        .describe_target_groups()
        .target_group_arns(group_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeTargetGroups {group_arn}: {e:?}"));
    let group = groups.target_groups().first().expect("the target group");
    let health = elb
        .describe_target_health()
        .target_group_arn(group_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeTargetHealth {group_arn}: {e:?}"));
    let Some(target) = health
        .target_health_descriptions()
        .iter()
        .find_map(|d| d.target())
    else {
        return gateway_answer(503, "Service Unavailable");
    };
    let id = target.id().unwrap_or_default();
    match group.target_type() {
        Some(TargetTypeEnum::Lambda) => {
            // arn:aws:lambda:{region}:{account}:function:{name}
            let function = id.rsplit_once(":function:").map_or(id, |(_, name)| name);
            let event = lambda_event(group_arn, request, mapped, query);
            match cell.invoke_module(function, &event).await {
                Some(invoked) => answer_of(function, invoked),
                None => gateway_answer(502, "Bad Gateway"),
            }
        }
        Some(TargetTypeEnum::Ip) => {
            let port = target.port().or(group.port()).unwrap_or(80);
            let endpoint = format!("http://{id}:{port}");
            forward(
                &endpoint,
                request,
                &mapped.path,
                query,
                &Value::Object(mapped.headers.clone()),
            )
            .await
        }
        other => panic!("the cell's load balancer shim has no {other:?} targets"),
    }
}

/// The event the load balancer invokes a Lambda target with (multi-value headers off).
fn lambda_event(group_arn: &str, request: &Request, mapped: &Mapped, query: &str) -> Value {
    let mut parameters = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        parameters.insert(name.into(), value.into());
    }
    json!({
        "requestContext": {"elb": {"targetGroupArn": group_arn}},
        "httpMethod": request.method,
        "path": mapped.path,
        "queryStringParameters": parameters,
        "headers": mapped.headers,
        "body": request.body.as_ref().map_or_else(String::new, Value::to_string),
        "isBase64Encoded": false
    })
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn the_load_balancer_s_wildcards_match_as_its_conditions_do() {
        assert!(glob(
            "/api/v1/financial/*",
            "/api/v1/financial/accounts",
            false
        ));
        assert!(glob("/api/v1/financial", "/api/v1/financial", false));
        assert!(!glob(
            "/api/v1/financial",
            "/api/v1/financial/accounts",
            false
        ));
        assert!(!glob("/api/v1/financial/*", "/api/v1/financialx", false));
        assert!(glob("1.3.0", "1.3.0", true));
        assert!(!glob("1.3.0", "1.2.0", true));
        assert!(glob("1.?.*", "1.3.0-rc.1", true));
        assert!(glob("ABC", "abc", true) && !glob("ABC", "abc", false));
    }
}
