//! Several versions of a module side by side, each tenant served by one: its pin, else the
//! module's default. The gateway's decision is asked directly (`Authorizer::authorize`), so
//! each test sees which version's backend a tenant's request would go to.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use plinth_registry::gateway::GatewayRequest;
use serde_json::{Value, json};

use crate::support::api::{Auth, TestPlatform, financial, operator, tenant_admin};
use crate::support::fakes::Backend;

crate::on_both_stores!(
    installing_a_version_alongside_leaves_the_first_untouched,
    a_pinned_tenant_stays_on_its_version_when_the_default_moves,
    unpinning_moves_a_tenant_to_the_default,
    a_pin_to_a_version_whose_schema_refuses_the_tenant_s_configuration_is_refused_naming_the_field,
    uninstalling_one_version_leaves_the_other_serving,
    pins_are_refused_for_unknown_versions_and_other_tenants_admins,
    a_tenant_s_configuration_is_resolved_with_its_version_s_defaults,
    a_tenant_s_configuration_is_checked_against_the_schema_of_the_version_serving_it,
    a_backend_registering_itself_while_the_installer_records_its_version_stays_that_version_s,
);

/// The financial example at `version`; 1.3.0 allows a tax rate of at most 0.5.
fn financial_at(version: &str) -> Value {
    let mut manifest = financial();
    manifest["version"] = json!(version);
    if version == "1.3.0" {
        manifest["configuration"]["schema"]["properties"]["tax_rate"]["maximum"] = json!(0.5);
        manifest["configuration"]["defaults"]["invoice_prefix"] = json!("V13");
    }
    manifest
}

/// Two versions of financial: 1.2.0 installed first, 1.3.0 alongside, each at its own
/// backend; tenants acme and globex with the module enabled. Returns the two backends' URLs.
async fn two_versions(p: &TestPlatform) -> (String, String) {
    let (first, second) = (
        Backend::default().start().await,
        Backend::default().start().await,
    );
    for version in ["1.2.0", "1.3.0"] {
        p.call(
            Method::POST,
            "/api/v1/modules",
            operator(),
            Some(financial_at(version)),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.2.0", "endpoint": first})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("financial").await["status"], "installed");
    install_alongside(p, "1.3.0", &second).await;
    for tenant in ["acme", "globex"] {
        p.call(
            Method::POST,
            "/api/v1/tenants",
            operator(),
            Some(json!({"id": tenant, "name": tenant, "subscription_tier": "premium"})),
        )
        .await
        .expect(StatusCode::CREATED);
        p.enable(tenant, "financial").await;
    }
    (first, second)
}

async fn install_alongside(p: &TestPlatform, version: &str, endpoint: &str) -> Value {
    let started = p
        .call(
            Method::POST,
            "/api/v1/modules/financial/install",
            operator(),
            Some(json!({"version": version, "endpoint": endpoint, "alongside": true})),
        )
        .await;
    started.expect(StatusCode::ACCEPTED);
    alongside_settled(p, version).await
}

async fn alongside_settled(p: &TestPlatform, version: &str) -> Value {
    for _ in 0..200 {
        let answer = p
            .call(
                Method::GET,
                &format!("/api/v1/modules/financial/installation?version={version}"),
                operator(),
                None,
            )
            .await;
        let status = answer.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if answer.status == StatusCode::OK && status != "pending" && status != "running" {
            return answer.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("financial {version} alongside did not settle");
}

/// The backend the gateway would send `tenant`'s admin's `GET /api/v1/financial/invoices` to.
async fn routed_to(p: &TestPlatform, tenant: &str) -> String {
    let Auth::Token(token) = tenant_admin(tenant) else {
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let request = GatewayRequest::new("GET", "/api/v1/financial/invoices", None, &headers);
    let decision = p
        .app
        .authorizer
        .authorize(request)
        .await
        .unwrap_or_else(|e| panic!("{tenant}'s request was refused: {e}"));
    decision.upstream.url.clone()
}

async fn pin(p: &TestPlatform, tenant: &str, version: &str) -> crate::support::api::Response {
    p.call(
        Method::PUT,
        &format!("/api/v1/tenants/{tenant}/modules/financial/pin"),
        operator(),
        Some(json!({"version": version})),
    )
    .await
}

async fn set_default(p: &TestPlatform, version: &str) -> crate::support::api::Response {
    p.call(
        Method::PUT,
        "/api/v1/modules/financial/default-version",
        operator(),
        Some(json!({"version": version})),
    )
    .await
}

async fn installing_a_version_alongside_leaves_the_first_untouched(p: TestPlatform) {
    let (first, second) = two_versions(&p).await;

    let installation = p.settled("financial").await;
    assert_eq!(installation["installed_version"], "1.2.0");
    assert_eq!(installation["deployment"]["endpoint"], first.as_str());
    let alongside = alongside_settled(&p, "1.3.0").await;
    assert_eq!(alongside["status"], "installed", "{alongside}");
    assert_eq!(alongside["deployment"]["endpoint"], second.as_str());
    let instances = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/instances",
            operator(),
            None,
        )
        .await;
    let mut urls: Vec<&str> = instances
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    urls.sort_unstable();
    let mut both = vec![first.as_str(), second.as_str()];
    both.sort_unstable();
    assert_eq!(urls, both, "each version has its own instance");
    assert!(p.saw("module.version.installed").await);
    // Without pins or a default set, every tenant stays on the first installation's version.
    assert_eq!(routed_to(&p, "acme").await, first);
    assert_eq!(routed_to(&p, "globex").await, first);

    let listed = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/installed-versions",
            operator(),
            None,
        )
        .await;
    let listed = listed.expect(StatusCode::OK);
    assert_eq!(listed["default_version"], "1.2.0");
    let versions: Vec<(&str, bool)> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap(),
                v["alongside"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [("1.2.0", false), ("1.3.0", true)]);

    // The same version twice, or a version alongside nothing, is refused.
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.3.0", "endpoint": second, "alongside": true})),
    )
    .await
    .expect_problem(
        StatusCode::CONFLICT,
        "1.3.0 is already installed alongside 1.2.0",
    );
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.2.0", "endpoint": second, "alongside": true})),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "financial 1.2.0 is already installed");
}

async fn a_pinned_tenant_stays_on_its_version_when_the_default_moves(p: TestPlatform) {
    let (first, second) = two_versions(&p).await;
    pin(&p, "acme", "1.2.0").await.expect(StatusCode::OK);
    assert_eq!(routed_to(&p, "acme").await, first);

    let moved = set_default(&p, "1.3.0").await;
    assert_eq!(moved.expect(StatusCode::OK)["default_version"], "1.3.0");

    assert_eq!(
        routed_to(&p, "acme").await,
        first,
        "acme is pinned to 1.2.0"
    );
    assert_eq!(
        routed_to(&p, "globex").await,
        second,
        "globex follows the default"
    );
    let shown = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/pin",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(
        shown.expect(StatusCode::OK),
        &json!({"module": "financial", "tenant_id": "acme", "version": "1.2.0",
                "pinned": "1.2.0", "default_version": "1.3.0"})
    );
    assert!(p.saw("module.version.pinned").await);
    assert!(p.saw("module.version.default_set").await);
    let audit = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/audit",
            tenant_admin("acme"),
            None,
        )
        .await;
    let actions: Vec<&str> = audit.expect(StatusCode::OK)["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"module.version.pinned"), "{actions:?}");
    let listed = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/installed-versions",
            operator(),
            None,
        )
        .await;
    let listed = listed.expect(StatusCode::OK);
    assert_eq!(listed["versions"][0]["pinned_tenants"], json!(["acme"]));
    assert_eq!(listed["versions"][1]["default"], true);
}

async fn unpinning_moves_a_tenant_to_the_default(p: TestPlatform) {
    let (first, second) = two_versions(&p).await;
    let pinned = pin(&p, "globex", "1.3.0").await;
    assert_eq!(pinned.expect(StatusCode::OK)["version"], "1.3.0");
    assert_eq!(routed_to(&p, "globex").await, second);
    assert_eq!(routed_to(&p, "acme").await, first);

    let unpinned = p
        .call(
            Method::DELETE,
            "/api/v1/tenants/globex/modules/financial/pin",
            operator(),
            None,
        )
        .await;
    let unpinned = unpinned.expect(StatusCode::OK);
    assert_eq!(unpinned["version"], "1.2.0");
    assert_eq!(unpinned["pinned"], Value::Null);
    assert_eq!(routed_to(&p, "globex").await, first);
    assert!(p.saw("module.version.unpinned").await);
}

async fn a_pin_to_a_version_whose_schema_refuses_the_tenant_s_configuration_is_refused_naming_the_field(
    p: TestPlatform,
) {
    let (first, _) = two_versions(&p).await;
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/modules/financial",
        tenant_admin("acme"),
        Some(json!({"configuration": {"tax_rate": 0.75}})),
    )
    .await
    .expect(StatusCode::OK);

    let refused = pin(&p, "acme", "1.3.0").await;
    let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "configuration.tax_rate");
    assert_eq!(
        body["errors"][0]["path"], "configuration.tax_rate",
        "{body}"
    );
    assert_eq!(routed_to(&p, "acme").await, first, "nothing was pinned");
    // Making 1.3.0 the default would move acme too: refused alike, naming the tenant.
    set_default(&p, "1.3.0")
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "tenant acme");
    // Globex's configuration fits: it may go.
    pin(&p, "globex", "1.3.0").await.expect(StatusCode::OK);
}

async fn a_tenant_s_configuration_is_checked_against_the_schema_of_the_version_serving_it(
    p: TestPlatform,
) {
    two_versions(&p).await;
    pin(&p, "acme", "1.3.0").await.expect(StatusCode::OK);
    let configure = |tenant: &'static str, tax_rate: f64| {
        let p = &p;
        async move {
            p.call(
                Method::PUT,
                &format!("/api/v1/tenants/{tenant}/modules/financial"),
                tenant_admin(tenant),
                Some(json!({"configuration": {"tax_rate": tax_rate}})),
            )
            .await
        }
    };
    // Acme is served by 1.3.0, whose schema allows at most 0.5: refused, nothing written.
    let refused = configure("acme", 0.75).await;
    let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "schema");
    assert_eq!(
        body["errors"][0]["path"], "configuration.tax_rate",
        "{body}"
    );
    let stored = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config",
            tenant_admin("acme"),
            None,
        )
        .await;
    stored.expect(StatusCode::OK);
    assert!(
        stored.body["configuration"]["tax_rate"].is_number(),
        "{}",
        stored.body
    );
    assert_ne!(
        stored.body["configuration"]["tax_rate"],
        json!(0.75),
        "{}",
        stored.body
    );
    configure("acme", 0.4).await.expect(StatusCode::OK);
    // Globex is on 1.2.0, whose schema allows it.
    configure("globex", 0.75).await.expect(StatusCode::OK);
}

async fn uninstalling_one_version_leaves_the_other_serving(p: TestPlatform) {
    let (first, second) = two_versions(&p).await;
    pin(&p, "acme", "1.3.0").await.expect(StatusCode::OK);
    let uninstall = |version: &'static str| {
        let p = &p;
        async move {
            p.call(
                Method::DELETE,
                &format!("/api/v1/modules/financial/installation?version={version}"),
                operator(),
                None,
            )
            .await
        }
    };
    uninstall("1.3.0").await.expect_problem(
        StatusCode::CONFLICT,
        "tenant(s) acme are pinned to financial 1.3.0",
    );
    p.call(
        Method::DELETE,
        "/api/v1/modules/financial/installation",
        operator(),
        None,
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "1.3.0 installed alongside it");
    p.call(
        Method::DELETE,
        "/api/v1/tenants/acme/modules/financial/pin",
        operator(),
        None,
    )
    .await
    .expect(StatusCode::OK);

    uninstall("1.3.0").await.expect(StatusCode::ACCEPTED);
    let gone = alongside_settled(&p, "1.3.0").await;
    assert_eq!(gone["status"], "uninstalled", "{gone}");

    assert_eq!(routed_to(&p, "acme").await, first);
    assert_eq!(routed_to(&p, "globex").await, first);
    let installation = p.settled("financial").await;
    assert_eq!(installation["status"], "installed");
    assert_eq!(installation["installed_version"], "1.2.0");
    let instances = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/instances",
            operator(),
            None,
        )
        .await;
    let urls: Vec<&str> = instances
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [first.as_str()],
        "1.3.0's instance ({second}) went with it"
    );
    assert!(p.saw("module.version.uninstalled").await);
    uninstall("1.3.0").await.expect_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "financial 1.3.0 is not installed",
    );
}

async fn pins_are_refused_for_unknown_versions_and_other_tenants_admins(p: TestPlatform) {
    two_versions(&p).await;
    let body = pin(&p, "acme", "9.9.9").await;
    let body = body.expect_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "financial 9.9.9 is not installed",
    );
    assert_eq!(body["errors"][0]["path"], "version");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("installed: 1.2.0, 1.3.0"),
        "{body}"
    );
    pin(&p, "acme", "latest").await.expect_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "`latest` is not a semantic version",
    );
    set_default(&p, "2.0.0").await.expect_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "financial 2.0.0 is not installed",
    );
    pin(&p, "initech", "1.3.0")
        .await
        .expect_problem(StatusCode::NOT_FOUND, "no tenant initech");
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/modules/warehouse/pin",
        operator(),
        Some(json!({"version": "1.0.0"})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "warehouse is not installed");

    // Another tenant's admin may not read acme's pin; a tenant's own admin may read, not set.
    p.call(
        Method::GET,
        "/api/v1/tenants/acme/modules/financial/pin",
        tenant_admin("globex"),
        None,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/modules/financial/pin",
        tenant_admin("acme"),
        Some(json!({"version": "1.3.0"})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    p.call(
        Method::PUT,
        "/api/v1/modules/financial/default-version",
        tenant_admin("acme"),
        Some(json!({"version": "1.3.0"})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    p.call(
        Method::GET,
        "/api/v1/tenants/acme/modules/financial/pin",
        tenant_admin("acme"),
        None,
    )
    .await
    .expect(StatusCode::OK);
}

async fn a_tenant_s_configuration_is_resolved_with_its_version_s_defaults(p: TestPlatform) {
    two_versions(&p).await;
    let config = |tenant: &'static str| {
        let p = &p;
        async move {
            let answer = p
                .call(
                    Method::GET,
                    &format!("/api/v1/tenants/{tenant}/modules/financial/config"),
                    tenant_admin(tenant),
                    None,
                )
                .await;
            answer.expect(StatusCode::OK).clone()
        }
    };
    let before = config("globex").await;
    assert_eq!(before["configuration"]["invoice_prefix"], "INV");

    pin(&p, "globex", "1.3.0").await.expect(StatusCode::OK);

    let after = config("globex").await;
    assert_eq!(
        after["configuration"]["invoice_prefix"], "V13",
        "1.3.0's default"
    );
    assert_ne!(
        after["version"], before["version"],
        "the configuration's version moved"
    );
    assert_eq!(
        config("acme").await["configuration"]["invoice_prefix"],
        "INV"
    );
}

/// Found under `plinth up --aws`: a version's backend registers itself (the SDK does at start)
/// while the installer records it as that version's; the registration had read no record and
/// wrote one of no version over the installer's, so the version had no instance (503 for its
/// tenants) and the first installation's routes took its backend. Raced here each time.
async fn a_backend_registering_itself_while_the_installer_records_its_version_stays_that_version_s(
    p: TestPlatform,
) {
    use plinth_registry::deploy::Deployment;
    use plinth_registry::instances::Serving;

    let (first, second) = two_versions(&p).await;
    pin(&p, "globex", "1.3.0").await.expect(StatusCode::OK);
    let module = plinth_module_sdk::ModuleName::parse("financial").unwrap();
    let deployment = Deployment {
        endpoint: second.clone(),
        health_url: format!("{second}/health"),
        handle: Value::Null,
        addresses: Vec::new(),
    };
    for round in 0..16u64 {
        let instances = &p.app.plane.instances;
        // As when the installer deploys: no record of the backend yet. The installer's write
        // starts a little later each round, so that some round lands between the
        // registration's read and its write.
        instances
            .remove_all(&module, Serving::Alongside("1.3.0"))
            .await
            .unwrap();
        let registration = p.call(
            Method::POST,
            "/api/v1/modules/financial/instances",
            operator(),
            Some(json!({"instance_url": second})),
        );
        let served = async {
            tokio::time::sleep(std::time::Duration::from_micros(round * 400)).await;
            instances
                .serve(&module, &deployment, Serving::Alongside("1.3.0"))
                .await
        };
        let (registered, served) = tokio::join!(registration, served);
        registered.expect(StatusCode::CREATED);
        served.unwrap();
        let listed = instances.list(&module).await.unwrap();
        let of_second: Vec<_> = listed.iter().filter(|i| i.url == second).collect();
        assert_eq!(of_second.len(), 1, "round {round}: {listed:?}");
        assert!(
            of_second[0].alongside && of_second[0].version.as_deref() == Some("1.3.0"),
            "round {round}: the registration took the version away: {listed:?}"
        );
        assert_eq!(routed_to(&p, "globex").await, second, "round {round}");
        assert_eq!(routed_to(&p, "acme").await, first, "round {round}");
    }
}
