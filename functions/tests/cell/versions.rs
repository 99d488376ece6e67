//! Issue 23 on AWS, end to end in a cell with the module listener: two installed versions of
//! financial (Lambda functions `plinth-financial` and `plinth-financial-v1-3-0`) serve two
//! tenants at once, each request through the `ApiGateway` shim (the authorizer function, then
//! the integration the installer stored on the HTTP API) and the `alb` shim (the listener's
//! rules the installer stored, by path and `X-Plinth-Version`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api_gateway::{ApiGateway, Request, Response};
use crate::platform::{Cell, FINANCIAL_ALONGSIDE_FUNCTION, FINANCIAL_FUNCTION};
use crate::{
    ONE_CELL_AT_A_TIME, Users, alongside_reaches, expect, install_financial, installation_reaches,
    publish_the_first_version, pushed_image_publishes, token,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_serve_two_tenants_at_once_through_api_gateway_and_the_module_listener() {
    let _one = ONE_CELL_AT_A_TIME.lock().await;
    let test = "two_versions_serve_two_tenants_at_once_through_api_gateway_and_the_module_listener";
    let Some(cell) = Cell::start_with_module_listener(test).await else {
        return;
    };
    let api = ApiGateway { cell: &cell };
    let secret = cell.jwt_secret().await;
    let users = Users::signed_with(&secret);
    // Tenant admins working in a company of their tenant: acme's, and globex's.
    let acme = token(
        &secret,
        "bob",
        Some("acme"),
        Some("acme-de"),
        &["tenant:admin"],
    );
    let globex = token(
        &secret,
        "gina",
        Some("globex"),
        Some("globex-us"),
        &["tenant:admin"],
    );

    publish_the_first_version(&api, &users).await;
    install_financial(&api, &users).await;
    pushed_image_publishes(&api, &users, "1.3.0").await;
    install_alongside(&api, &users, "1.3.0").await;
    integration_goes_to_the_listener(&cell).await;

    for (tenant, company, admin) in [("acme", "acme-de", &acme), ("globex", "globex-us", &globex)] {
        tenant_with_financial(&api, &users, tenant, company, admin).await;
    }

    let pinned = api
        .send(
            Request::new("PUT", "/api/v1/tenants/globex/modules/financial/pin")
                .bearer(&users.operator)
                .json(json!({"version": "1.3.0"})),
        )
        .await;
    expect(&pinned, 200, "pin globex to financial 1.3.0");
    both_at_once(&api, [(&acme, "1.2.0"), (&globex, "1.3.0")]).await;

    let unpinned = api
        .send(
            Request::new("DELETE", "/api/v1/tenants/globex/modules/financial/pin")
                .bearer(&users.operator),
        )
        .await;
    assert!(
        [200, 204].contains(&unpinned.status),
        "unpin globex: {} {}",
        unpinned.status,
        unpinned.body
    );
    both_at_once(&api, [(&acme, "1.2.0"), (&globex, "1.2.0")]).await;

    uninstall_both(&api, &users).await;
}

/// Asks for `version` installed alongside financial's first installation and waits until the
/// installer function has it installed.
async fn install_alongside(api: &ApiGateway<'_>, users: &Users, version: &str) {
    let asked = api
        .send(
            Request::new("POST", "/api/v1/modules/financial/install")
                .bearer(&users.operator)
                .json(json!({"version": version, "alongside": true})),
        )
        .await;
    expect(
        &asked,
        202,
        &format!("install financial {version} alongside"),
    );
    alongside_reaches(api, users, version, "installed").await;
}

/// What the installer stored on moto: financial's routes go to one `HTTP_PROXY` integration
/// over the VPC link to the module listener, setting `X-Plinth-Version` from the authorizer's
/// `version`; the listener has a rule for each installed version.
async fn integration_goes_to_the_listener(cell: &Cell) {
    let listener = cell.module_listener.as_ref().expect("the module listener");
    let client = aws_sdk_apigatewayv2::Client::new(&cell.sdk);
    let routes = client
        .get_routes()
        .api_id(&listener.api_id)
        .send()
        .await
        .expect("GetRoutes");
    let target = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("ANY /api/v1/financial/{proxy+}"))
        .and_then(|r| r.target())
        .unwrap_or_else(|| panic!("the installer published no route of financial: {routes:?}"));
    let integration = client
        .get_integration()
        .api_id(&listener.api_id)
        .integration_id(target.trim_start_matches("integrations/"))
        .send()
        .await
        .expect("GetIntegration");
    assert_eq!(
        (
            integration.integration_uri(),
            integration.connection_id(),
            integration
                .request_parameters()
                .and_then(|p| p.get("overwrite:header.x-plinth-version"))
                .map(String::as_str),
        ),
        (
            Some(listener.listener_arn.as_str()),
            Some(listener.vpc_link_id.as_str()),
            Some("$context.authorizer.version"),
        ),
        "financial's integration goes through the VPC link to the module listener: {integration:?}"
    );
    let rules = aws_sdk_elasticloadbalancingv2::Client::new(&cell.sdk)
        .describe_rules()
        .listener_arn(&listener.listener_arn)
        .send()
        .await
        .expect("DescribeRules");
    let mut versions: Vec<String> = rules
        .rules()
        .iter()
        .flat_map(|r| r.conditions())
        .filter_map(|c| c.http_header_config())
        .flat_map(|h| h.values().iter().cloned())
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        ["1.2.0", "1.3.0"],
        "one rule per installed version on the listener: {rules:?}"
    );
}

/// Tenant `tenant` (premium, as financial asks) with company `company`, financial enabled.
async fn tenant_with_financial(
    api: &ApiGateway<'_>,
    users: &Users,
    tenant: &str,
    company: &str,
    admin: &str,
) {
    let created = api
        .send(
            Request::new("POST", "/api/v1/tenants")
                .bearer(&users.operator)
                .json(json!({"id": tenant, "name": tenant, "subscription_tier": "premium"})),
        )
        .await;
    expect(&created, 201, &format!("create tenant {tenant}"));
    let calls = [
        (
            "POST",
            format!("/api/v1/tenants/{tenant}/companies"),
            json!({"id": company, "name": company}),
            201,
        ),
        (
            "PUT",
            format!("/api/v1/tenants/{tenant}/modules/financial"),
            json!({}),
            200,
        ),
    ];
    for (method, path, body, status) in calls {
        let answered = api
            .send(Request::new(method, &path).bearer(admin).json(body))
            .await;
        expect(&answered, status, &format!("{method} {path}"));
    }
}

/// The paths of financial's routes that function `name` was invoked at, from `from` on.
fn routes_invoked(api: &ApiGateway<'_>, name: &str, from: usize) -> Vec<String> {
    api.cell
        .front
        .invocations(name)
        .into_iter()
        .skip(from)
        .filter(|path| path.starts_with("/api/v1/financial/"))
        .collect()
}

/// Sends a request of each tenant at once — acme's to `/accounts`, globex's to `/invoices` —
/// and checks each reached the function of the version given: the authorizer named that
/// version, the load balancer's rule took it to that version's function (what each function
/// was invoked at), and the function answered 200.
async fn both_at_once(api: &ApiGateway<'_>, tenants: [(&String, &str); 2]) {
    let [(acme, acme_version), (globex, globex_version)] = tenants;
    let function = |version: &str| {
        if version == "1.3.0" {
            FINANCIAL_ALONGSIDE_FUNCTION
        } else {
            FINANCIAL_FUNCTION
        }
    };
    for (token, tenant, version) in [
        (acme, "acme", acme_version),
        (globex, "globex", globex_version),
    ] {
        authorizer_names(api, token, tenant, version).await;
    }
    let before = [FINANCIAL_FUNCTION, FINANCIAL_ALONGSIDE_FUNCTION]
        .map(|name| api.cell.front.invocations(name).len());
    let (acme_answer, globex_answer) = tokio::join!(
        api.send(Request::new("GET", "/api/v1/financial/accounts").bearer(acme)),
        api.send(Request::new("GET", "/api/v1/financial/invoices").bearer(globex)),
    );
    for (tenant, answer, version, path) in [
        (
            "acme",
            &acme_answer,
            acme_version,
            "/api/v1/financial/accounts",
        ),
        (
            "globex",
            &globex_answer,
            globex_version,
            "/api/v1/financial/invoices",
        ),
    ] {
        let decided = decision(answer);
        assert_eq!(
            decided["context"]["version"], version,
            "the authorizer's version for {tenant} (what X-Plinth-Version is set from): {decided}"
        );
        expect(
            answer,
            200,
            &format!("{tenant}'s GET {path}, answered by financial {version}"),
        );
    }
    let reached = [FINANCIAL_FUNCTION, FINANCIAL_ALONGSIDE_FUNCTION]
        .iter()
        .zip(before)
        .map(|(name, from)| (*name, routes_invoked(api, name, from)))
        .collect::<Vec<_>>();
    let mut expected: Vec<(&str, Vec<String>)> = vec![
        (FINANCIAL_FUNCTION, Vec::new()),
        (FINANCIAL_ALONGSIDE_FUNCTION, Vec::new()),
    ];
    for (version, path) in [
        (acme_version, "/api/v1/financial/accounts"),
        (globex_version, "/api/v1/financial/invoices"),
    ] {
        let slot = expected
            .iter_mut()
            .find(|(name, _)| *name == function(version))
            .expect("a function");
        slot.1.push(path.to_owned());
        slot.1.sort();
    }
    let mut reached = reached;
    for (_, paths) in &mut reached {
        paths.sort();
    }
    assert_eq!(
        reached, expected,
        "each tenant's request reached its own version's function (acme on {acme_version}, \
         globex on {globex_version}), by the listener's rules"
    );
}

/// Waits until the authorizer names `version` for the tenant of `token`: a warm authorizer
/// keeps a token's decision up to 30 s (`PASS_TTL`; no change event reaches a warm Lambda),
/// so a pin or an unpin takes effect within that.
async fn authorizer_names(api: &ApiGateway<'_>, token: &str, tenant: &str, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let answer = api
            .send(Request::new("GET", "/api/v1/financial/accounts").bearer(token))
            .await;
        let decided = decision(&answer);
        if decided["context"]["version"] == version {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the authorizer still names {} for {tenant} 45 s after it should name {version}",
            decided["context"]["version"]
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The authorizer's decision the shim kept on the answer.
fn decision(answer: &Response) -> Value {
    answer.authorizer.clone().unwrap_or_else(|| {
        panic!(
            "no authorizer decision on the answer {} {}",
            answer.status, answer.body
        )
    })
}

/// Takes 1.3.0 away, then financial, dropping its data: the listener keeps no rule of either
/// (the next run on this emulator starts clean).
async fn uninstall_both(api: &ApiGateway<'_>, users: &Users) {
    let asked = api
        .send(
            Request::new(
                "DELETE",
                "/api/v1/modules/financial/installation?version=1.3.0",
            )
            .bearer(&users.operator),
        )
        .await;
    expect(&asked, 202, "uninstall financial 1.3.0 alongside");
    alongside_reaches(api, users, "1.3.0", "uninstalled").await;
    let asked = api
        .send(
            Request::new(
                "DELETE",
                "/api/v1/modules/financial/installation?drop_data=true",
            )
            .bearer(&users.operator),
        )
        .await;
    expect(&asked, 202, "uninstall financial");
    installation_reaches(api, users, "financial", "uninstalled").await;
    let listener = api.cell.module_listener.as_ref().expect("the listener");
    let rules = aws_sdk_elasticloadbalancingv2::Client::new(&api.cell.sdk)
        .describe_rules()
        .listener_arn(&listener.listener_arn)
        .send()
        .await
        .expect("DescribeRules");
    let left: Vec<_> = rules
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .collect();
    assert!(left.is_empty(), "rules left on the listener: {left:?}");
}
