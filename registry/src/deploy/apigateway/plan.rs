//! What a module's routes and integration should be, from its manifest and deployment: the
//! part of [`super::ApiGatewayRoutes`] that makes no call.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::{ConnectionType, Integration, IntegrationType};
use plinth_module_sdk::Manifest;

use crate::deploy::ecs::EcsHandle;
use crate::deploy::{DeployError, Deployment};
use plinth_module_sdk::wire::CONTEXT_HEADER;

/// Where the authorizer's context token is: the authorizer returns it under `context`.
pub const AUTHORIZER_CONTEXT: &str = "$context.authorizer.context";
/// `X-Plinth-*` headers other than the context that the platform sets on its own requests to
/// modules; a client must not be able to send them through the gateway.
pub const REMOVED_HEADERS: &[&str] = &[
    "x-plinth-rule",
    // A module's call (issue 13): the tenant it names and a user's company pick.
    plinth_module_sdk::wire::TENANT_HEADER,
    crate::identity::COMPANY_HEADER,
];
/// The header a module reads the client's address from on AWS: API Gateway's own address of
/// the caller, replacing whatever a client sent there (`X-Forwarded-For`, which the `plinth`
/// gateway sets, is one of the headers API Gateway lets no mapping touch).
pub const CLIENT_ADDRESS_HEADER: &str = "x-real-ip";
/// The address API Gateway's connection came from.
pub const SOURCE_IP: &str = "$context.identity.sourceIp";

/// Request fields a module gets from the gateway alone, never from a client: the wire
/// contract's table ([`plinth_module_sdk::wire::GATEWAY_ONLY_FIELDS`]), which the `plinth`
/// gateway applies too. Every spelling with `_` for `-` is removed.
pub const GATEWAY_ONLY: [&str; 14] = plinth_module_sdk::wire::GATEWAY_ONLY_FIELDS;

/// Fields that frame a body or belong to one connection: their underscore spellings, which a
/// CGI-style backend reads as the real ones, are removed (the real ones are API Gateway's).
const FRAMING_AND_HOP_BY_HOP: [&str; 10] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// API Gateway's reserved headers (HTTP APIs, "Reserved headers" of parameter mapping): a
/// mapping that names one is refused, so these are left as API Gateway forwards them.
const RESERVED: [&str; 18] = [
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-location",
    "forwarded",
    "keep-alive",
    "origin",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "via",
];
const RESERVED_PREFIXES: [&str; 4] = ["access-control-", "apigw-", "x-amz-", "x-amzn-"];

/// Whether API Gateway refuses a mapping of the header `name` (lower case).
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// `name` (lower case) with each `-` as `-` or `_`: every spelling a CGI-style backend reads
/// as the same variable (API Gateway matches header names in any case, not `_` for `-`).
fn spellings(name: &str) -> Vec<String> {
    let dashes: Vec<usize> = name.match_indices('-').map(|(at, _)| at).collect();
    (0..1u32 << dashes.len())
        .map(|mask| {
            let mut spelling = name.as_bytes().to_vec();
            for (bit, &at) in dashes.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    spelling[at] = b'_';
                }
            }
            String::from_utf8(spelling).unwrap_or_default()
        })
        .collect()
}

/// The header mappings of every module integration, as near the `plinth` gateway's rules as
/// API Gateway's parameter mapping goes: the signed context and the client's address
/// (`X-Real-IP`) overwritten with API Gateway's own; the gateway-only fields and the
/// platform's other `X-Plinth-*` fields removed in every spelling, and the underscore
/// spellings of the framing and hop-by-hop fields. What it cannot do: remove or set a
/// reserved header ([`is_reserved`]: `Authorization`, `X-Forwarded-For`, `Forwarded`,
/// `X-Forwarded-Host`/`-Proto`, the framing and hop-by-hop fields), match a prefix
/// (`X-Plinth-*` beyond the platform's own fields), or see a query's `_method`.
pub fn header_parameters() -> BTreeMap<String, String> {
    let mut removed: Vec<String> = GATEWAY_ONLY
        .iter()
        .chain(&[CONTEXT_HEADER])
        .chain(REMOVED_HEADERS)
        .flat_map(|name| spellings(name))
        .collect();
    removed.extend(
        FRAMING_AND_HOP_BY_HOP
            .iter()
            .flat_map(|name| spellings(name).into_iter().skip(1)),
    );
    removed.push("proxy-connection".into());
    let overwritten = [
        (CONTEXT_HEADER, AUTHORIZER_CONTEXT),
        (CLIENT_ADDRESS_HEADER, SOURCE_IP),
    ];
    let mut parameters: BTreeMap<String, String> = removed
        .into_iter()
        .filter(|name| !is_reserved(name) && !overwritten.iter().any(|(o, _)| o == name))
        // The value of a removal is ignored, but it may not be empty.
        .map(|name| (format!("remove:header.{name}"), "''".to_owned()))
        .collect();
    for (name, value) in overwritten {
        parameters.insert(format!("overwrite:header.{name}"), value.to_owned());
    }
    parameters
}

/// Where a module's integration sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Lambda {
        function_arn: String,
    },
    Http {
        uri: String,
        vpc_link_id: Option<String>,
        /// The endpoint's own path, put in front of the request path.
        base_path: String,
    },
}

impl Target {
    /// The target of a deployment: `lambda:{arn}` endpoints are functions, a null handle is an
    /// external endpoint (reached over the internet), an ECS handle is reached through the VPC
    /// link at its Cloud Map service.
    pub(super) fn of(
        deployment: &Deployment,
        vpc_link_id: Option<&str>,
    ) -> Result<Self, DeployError> {
        if let Some(function_arn) = deployment.endpoint.strip_prefix("lambda:") {
            return Ok(Self::Lambda {
                function_arn: function_arn.to_owned(),
            });
        }
        if deployment.handle.is_null() {
            let url = reqwest::Url::parse(&deployment.endpoint).map_err(|e| {
                DeployError(format!(
                    "endpoint `{}` is not a URL: {e}",
                    deployment.endpoint
                ))
            })?;
            let origin = url.origin().ascii_serialization();
            return Ok(Self::Http {
                uri: origin,
                vpc_link_id: None,
                base_path: url.path().trim_end_matches('/').to_owned(),
            });
        }
        let handle: EcsHandle =
            serde_json::from_value(deployment.handle.clone()).map_err(|_| {
                DeployError(format!(
                    "cannot route to `{}`: not a Lambda, ECS or external deployment",
                    deployment.endpoint
                ))
            })?;
        let vpc_link_id = vpc_link_id.ok_or_else(|| {
            DeployError(
                "PLINTH_VPC_LINK_ID is not set: API Gateway reaches ECS services only through a VPC link".into(),
            )
        })?;
        let uri = handle.discovery_arn.ok_or_else(|| {
            DeployError(format!(
                "service `{}` has no Cloud Map service (ECS Service Connect) for API Gateway to reach it at",
                handle.service_arn
            ))
        })?;
        Ok(Self::Http {
            uri,
            vpc_link_id: Some(vpc_link_id.to_owned()),
            base_path: String::new(),
        })
    }
}

impl Target {
    /// The module listener (`super::super::alb`), reached through the VPC link.
    pub(super) fn listener(
        listener_arn: &str,
        vpc_link_id: Option<&str>,
    ) -> Result<Self, DeployError> {
        let vpc_link_id = vpc_link_id.ok_or_else(|| {
            DeployError(
                "PLINTH_VPC_LINK_ID is not set: API Gateway reaches the module listener (PLINTH_MODULE_LISTENER_ARN) only through a VPC link".into(),
            )
        })?;
        Ok(Self::Http {
            uri: listener_arn.to_owned(),
            vpc_link_id: Some(vpc_link_id.to_owned()),
            base_path: String::new(),
        })
    }
}

/// The integration a module should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IntegrationSpec {
    pub description: String,
    pub kind: IntegrationType,
    pub uri: String,
    pub connection: ConnectionType,
    pub connection_id: Option<String>,
    pub payload_format_version: &'static str,
    pub request_parameters: BTreeMap<String, String>,
}

impl IntegrationSpec {
    pub(super) fn new(module: &str, target: &Target) -> Self {
        let mut request_parameters = header_parameters();
        let description = marker(module);
        match target {
            Target::Lambda { function_arn } => Self {
                description,
                kind: IntegrationType::AwsProxy,
                uri: function_arn.clone(),
                connection: ConnectionType::Internet,
                connection_id: None,
                payload_format_version: "2.0",
                request_parameters,
            },
            Target::Http {
                uri,
                vpc_link_id,
                base_path,
            } => {
                // HTTP integrations send the integration's own path unless told otherwise, and
                // private ones would prefix the stage: the backend gets the request's path.
                let path = if base_path.is_empty() {
                    "$request.path".to_owned()
                } else {
                    format!("{base_path}${{request.path}}")
                };
                request_parameters.insert("overwrite:path".into(), path);
                Self {
                    description,
                    kind: IntegrationType::HttpProxy,
                    uri: uri.clone(),
                    connection: if vpc_link_id.is_some() {
                        ConnectionType::VpcLink
                    } else {
                        ConnectionType::Internet
                    },
                    connection_id: vpc_link_id.clone(),
                    // The only version HTTP integrations take.
                    payload_format_version: "1.0",
                    request_parameters,
                }
            }
        }
    }

    /// Whether `existing` can be updated into this one (type and connection cannot change).
    pub(super) fn reusable(&self, existing: &Integration) -> bool {
        existing.integration_type() == Some(&self.kind)
            && existing
                .connection_type()
                .unwrap_or(&ConnectionType::Internet)
                == &self.connection
    }

    pub(super) fn matches(&self, existing: &Integration) -> bool {
        let parameters: BTreeMap<String, String> = existing
            .request_parameters()
            .map(|p| p.clone().into_iter().collect())
            .unwrap_or_default();
        self.reusable(existing)
            && existing.integration_uri() == Some(self.uri.as_str())
            && existing.connection_id() == self.connection_id.as_deref()
            && existing.payload_format_version() == Some(self.payload_format_version)
            && parameters == self.request_parameters
    }
}

/// The description that marks a module's integration.
pub(super) fn marker(module: &str) -> String {
    format!("plinth:module={module}")
}

/// The module's two route keys: its prefix, and everything below it.
pub(super) fn route_keys(manifest: &Manifest) -> Result<[String; 2], DeployError> {
    let prefix = manifest.backend.api_prefix.trim_end_matches('/');
    if !prefix.starts_with('/') || prefix.contains(char::is_whitespace) {
        return Err(DeployError(format!(
            "module `{}` has no usable `backend.api_prefix`: `{}`",
            manifest.name, manifest.backend.api_prefix
        )));
    }
    Ok([format!("ANY {prefix}"), format!("ANY {prefix}/{{proxy+}}")])
}

/// The invoke permissions of a module function: `(statement id, source ARN)` for the prefix
/// and for everything below it, from the API `api` only.
pub(super) fn invoke_permissions(
    api: &str,
    function_arn: &str,
    keys: &[String; 2],
) -> Result<[(String, String); 2], DeployError> {
    // arn:{partition}:lambda:{region}:{account}:function:{name}
    let parts: Vec<&str> = function_arn.split(':').collect();
    let [_, partition, "lambda", region, account, "function", ..] = parts.as_slice() else {
        return Err(DeployError(format!(
            "`{function_arn}` is not a function ARN"
        )));
    };
    let source =
        |path: &str| format!("arn:{partition}:execute-api:{region}:{account}:{api}/*/*{path}");
    let prefix = keys[0].trim_start_matches("ANY ");
    Ok([
        (format!("plinth-{api}-prefix"), source(prefix)),
        (
            format!("plinth-{api}-proxy"),
            source(&format!("{prefix}/*")),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:plinth-billing";

    fn manifest(prefix: &str) -> Manifest {
        let mut manifest = Manifest::from_json_str(
            &json!({
                "name": "billing",
                "display_name": "Billing",
                "version": "1.0.0",
                "backend": {"type": "lambda", "api_prefix": "/api/v1/billing", "image": "billing:1.0.0"}
            })
            .to_string(),
        )
        .unwrap();
        manifest.backend.api_prefix = prefix.into();
        manifest
    }

    fn deployment(endpoint: &str, handle: serde_json::Value) -> Deployment {
        Deployment {
            endpoint: endpoint.into(),
            health_url: String::new(),
            handle,
            addresses: Vec::new(),
        }
    }

    fn ecs_handle(discovery_arn: Option<&str>) -> serde_json::Value {
        json!({
            "cluster": "plinth",
            "service_arn": "arn:aws:ecs:eu-west-1:123456789012:service/plinth/plinth-billing",
            "task_definition_arn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/plinth-billing:3",
            "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/billing@sha256:00",
            "discovery_arn": discovery_arn,
        })
    }

    #[test]
    fn a_module_has_its_prefix_and_everything_below_it() {
        let keys = route_keys(&manifest("/api/v1/billing/")).unwrap();
        assert_eq!(
            keys,
            ["ANY /api/v1/billing", "ANY /api/v1/billing/{proxy+}"]
        );
        let error = route_keys(&manifest("api/v1/billing")).unwrap_err();
        assert!(error.to_string().contains("backend.api_prefix"), "{error}");
    }

    #[test]
    fn a_lambda_deployment_is_a_proxy_to_its_function_with_payload_2() {
        let target = Target::of(
            &deployment(&format!("lambda:{FUNCTION}"), json!({})),
            Some("vpclink"),
        )
        .unwrap();
        let spec = IntegrationSpec::new("billing", &target);
        assert_eq!(spec.kind, IntegrationType::AwsProxy);
        assert_eq!(spec.uri, FUNCTION);
        assert_eq!(spec.connection, ConnectionType::Internet);
        assert_eq!(spec.payload_format_version, "2.0");
        assert_eq!(spec.description, "plinth:module=billing");
        assert_eq!(spec.request_parameters, header_parameters());
        assert_eq!(
            spec.request_parameters["overwrite:header.x-plinth-context"],
            "$context.authorizer.context"
        );
        assert_eq!(spec.request_parameters["remove:header.x-plinth-rule"], "''");
    }

    #[test]
    fn what_only_the_gateway_sends_is_removed_in_every_spelling_api_gateway_lets_us_map() {
        let parameters = header_parameters();
        let removed = |name: &str| parameters.contains_key(&format!("remove:header.{name}"));
        for name in [
            "x-module-api-key",
            "x_module_api_key",
            "x-module_api-key",
            "x-http-method-override",
            "x_http_method_override",
            "x-http-method",
            "x-method-override",
            "x_method_override",
            "x-forwarded-port",
            "x_forwarded_for",
            "x-client-ip",
            "true_client_ip",
            "x_real_ip",
            "x-plinth-rule",
            "x_plinth_context",
            "content_length",
            "transfer_encoding",
            "proxy_authorization",
            "keep_alive",
            "proxy-connection",
        ] {
            assert!(removed(name), "{name} is not removed: {parameters:?}");
        }
        assert_eq!(
            parameters["overwrite:header.x-real-ip"],
            "$context.identity.sourceIp"
        );
        assert_eq!(
            parameters["overwrite:header.x-plinth-context"],
            "$context.authorizer.context"
        );
        // API Gateway refuses a mapping of a reserved header: none is named, and no header is
        // both removed and overwritten.
        for key in parameters.keys() {
            let (action, name) = key.split_once(":header.").unwrap();
            assert!(!is_reserved(name), "{key} names a reserved header");
            assert_eq!(name, name.to_ascii_lowercase());
            if action == "overwrite" {
                assert!(!removed(name), "{name} both removed and overwritten");
            }
        }
        for reserved in [
            "authorization",
            "x-forwarded-for",
            "forwarded",
            "content-length",
        ] {
            assert!(is_reserved(reserved));
        }
    }

    #[test]
    fn an_external_endpoint_is_reached_over_the_internet_with_the_request_path() {
        let target = Target::of(
            &deployment("https://billing.example.com", serde_json::Value::Null),
            Some("vpclink"),
        )
        .unwrap();
        let spec = IntegrationSpec::new("billing", &target);
        assert_eq!(spec.kind, IntegrationType::HttpProxy);
        assert_eq!(spec.uri, "https://billing.example.com");
        assert_eq!(spec.connection, ConnectionType::Internet);
        assert_eq!(spec.connection_id, None);
        assert_eq!(spec.payload_format_version, "1.0");
        assert_eq!(spec.request_parameters["overwrite:path"], "$request.path");

        let based = Target::of(
            &deployment("http://10.0.0.5:8080/base", serde_json::Value::Null),
            None,
        )
        .unwrap();
        let spec = IntegrationSpec::new("billing", &based);
        assert_eq!(spec.uri, "http://10.0.0.5:8080");
        assert_eq!(
            spec.request_parameters["overwrite:path"],
            "/base${request.path}"
        );
    }

    #[test]
    fn an_ecs_service_is_reached_through_the_vpc_link_at_its_cloud_map_service() {
        let arn = "arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-abc";
        let ecs = deployment("http://billing.plinth.internal:8080", ecs_handle(Some(arn)));
        let spec = IntegrationSpec::new("billing", &Target::of(&ecs, Some("vl-1")).unwrap());
        assert_eq!(spec.kind, IntegrationType::HttpProxy);
        assert_eq!(spec.uri, arn);
        assert_eq!(spec.connection, ConnectionType::VpcLink);
        assert_eq!(spec.connection_id.as_deref(), Some("vl-1"));

        let error = Target::of(&ecs, None).unwrap_err();
        assert!(error.to_string().contains("PLINTH_VPC_LINK_ID"), "{error}");
        let unknown = deployment("http://billing.plinth.internal:8080", ecs_handle(None));
        let error = Target::of(&unknown, Some("vl-1")).unwrap_err();
        assert!(error.to_string().contains("Cloud Map"), "{error}");
    }

    #[test]
    fn api_gateway_may_invoke_the_function_from_the_module_routes_only() {
        let keys = route_keys(&manifest("/api/v1/billing")).unwrap();
        let permissions = invoke_permissions("a1b2c3", FUNCTION, &keys).unwrap();
        assert_eq!(
            permissions,
            [
                (
                    "plinth-a1b2c3-prefix".to_owned(),
                    "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3/*/*/api/v1/billing"
                        .to_owned()
                ),
                (
                    "plinth-a1b2c3-proxy".to_owned(),
                    "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3/*/*/api/v1/billing/*"
                        .to_owned()
                ),
            ]
        );
        assert!(invoke_permissions("a1b2c3", "plinth-billing", &keys).is_err());
    }
}
