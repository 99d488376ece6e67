//! The console's admin pages in headless Chromium (docs/console.md, "Administration"): the
//! marketplace, a tenant admin's configuration, features, roles and audit log, a platform
//! admin's publish/install/uninstall, API keys and dead letters. Helpers are `browser.rs`'s;
//! every test fails on any error the browser's console logged but those it names.

use std::time::Duration;

use fantoccini::actions::InputSource;
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::json;

use crate::browser::{
    ONE_AT_A_TIME, WAIT, browser, chromedriver, click, console_errors, demo, low_contrast,
    overflows, screenshot, sign_in_as_alice, text_of, wait_for_text,
};
use crate::support::SignedIn;

/// Signs in as `operator`, the platform admin, and waits for their menu.
async fn sign_in_as_operator(browser: &Client, url: &str) {
    browser.goto(&format!("{url}/")).await.unwrap();
    let user = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#sign-in-user"))
        .await
        .expect("the sign-in form");
    user.select_by_value("operator").await.unwrap();
    click(browser, "form.sign-in button[type=submit]").await;
    wait_for_text(browser, "#signed-in-as", "operator · platform").await;
}

/// Picks `value` in the `<select>` `css` finds.
async fn choose(browser: &Client, css: &str, value: &str) {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never showed: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} has no option {value}: {e}"));
}

/// Replaces what the field `css` holds with `text`.
async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never showed: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The `data-*` values of every element `css` finds, in order (`attribute` names which).
async fn all_of(browser: &Client, css: &str, attribute: &str) -> Vec<String> {
    let mut found = Vec::new();
    for element in browser.find_all(Locator::Css(css)).await.unwrap() {
        found.push(element.attr(attribute).await.unwrap().unwrap_or_default());
    }
    found
}

/// Waits until the elements `css` finds carry exactly `wanted` as `attribute`.
async fn wait_for_all(browser: &Client, css: &str, attribute: &str, wanted: &[&str]) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found = all_of(browser, css, attribute).await;
        if found == wanted {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} shows {found:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's controls that have no name a screen reader would say (no label, no
/// `aria-label`, no text), and how many can take the focus.
async fn unlabelled(browser: &Client) -> (Vec<String>, usize) {
    let script = r#"
        const found = [];
        let focusable = 0;
        for (const e of document.querySelectorAll('#main input, #main select, #main button, #main a[href]')) {
            if (!e.getClientRects().length) continue;
            if (!e.disabled) focusable += 1;
            const labelled = (e.labels && e.labels.length) || e.getAttribute('aria-label')
                || e.getAttribute('aria-labelledby') || e.textContent.trim();
            if (!labelled) found.push(`${e.tagName}#${e.id}: no label`);
        }
        return [found, focusable];"#;
    let answer = browser.execute(script, vec![]).await.unwrap();
    let found = answer[0]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (found, answer[1].as_u64().unwrap_or_default() as usize)
}

/// Every control of the page is labelled, and Tab reaches each one from the page's start,
/// its outline showing.
async fn usable(browser: &Client) {
    let (found, focusable) = unlabelled(browser).await;
    assert!(found.is_empty(), "{found:#?}");
    browser
        .execute("document.getElementById('main').focus()", vec![])
        .await
        .unwrap();
    let script = "const e = document.activeElement; const style = getComputedStyle(e); \
        return [document.getElementById('main').contains(e) && e.id !== 'main', \
        `${e.tagName}#${e.id} ${e.textContent.trim().slice(0, 30)}`, \
        style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2];";
    let mut reached = 0;
    for _ in 0..focusable {
        // The keyboard itself (an element's send_keys would type into a file field).
        let tab = char::from(fantoccini::key::Key::Tab);
        let keys = fantoccini::actions::KeyActions::new("keyboard".into())
            .then(fantoccini::actions::KeyAction::Down { value: tab })
            .then(fantoccini::actions::KeyAction::Up { value: tab });
        browser.perform_actions(keys).await.unwrap();
        let answer = browser.execute(script, vec![]).await.unwrap();
        if answer[0] != json!(true) {
            break;
        }
        assert!(answer[2] == json!(true), "{} shows no focus", answer[1]);
        reached += 1;
    }
    assert_eq!(
        reached, focusable,
        "Tab reached {reached} of {focusable} controls"
    );
}

/// The page fits `width` px: the window is set to it and nothing is wider.
async fn fits(browser: &Client, width: u32) {
    browser.set_window_size(width, 900).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    if overflows(browser).await {
        // Name what sticks out, for the failure's message.
        let script = "return [...document.querySelectorAll('body *')].filter((e) => \
            e.getBoundingClientRect().right > document.documentElement.clientWidth + 1) \
            .slice(-5).map((e) => `${e.tagName}#${e.id}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}`)";
        let wide = browser.execute(script, vec![]).await.unwrap();
        panic!("wider than {width} px: {wide}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_finds_a_module_in_the_marketplace_by_category_and_tag_and_opens_its_detail()
{
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-admin=marketplace]").await;
    let every = ["financial", "notifications", "warehouse"];
    wait_for_all(&browser, "[data-market]", "data-market", &every).await;

    choose(&browser, "#market-category", "finance").await;
    wait_for_all(&browser, "[data-market]", "data-market", &["financial"]).await;
    choose(&browser, "#market-category", "").await;
    choose(&browser, "#market-tag", "email").await;
    wait_for_all(&browser, "[data-market]", "data-market", &["notifications"]).await;
    // A category and a tag no module has together: the empty state, said.
    choose(&browser, "#market-category", "finance").await;
    wait_for_text(&browser, "#main", "No module matches these filters.").await;
    choose(&browser, "#market-tag", "invoicing").await;
    wait_for_all(&browser, "[data-market]", "data-market", &["financial"]).await;
    // The tier: what a basic tenant may enable (the premium financial module is not).
    choose(&browser, "#market-category", "").await;
    choose(&browser, "#market-tag", "").await;
    choose(&browser, "#market-tier", "basic").await;
    wait_for_all(
        &browser,
        "[data-market]",
        "data-market",
        &["notifications", "warehouse"],
    )
    .await;
    choose(&browser, "#market-tier", "").await;
    choose(&browser, "#market-category", "finance").await;
    wait_for_all(&browser, "[data-market]", "data-market", &["financial"]).await;
    screenshot(&browser, "marketplace").await;
    usable(&browser).await;
    fits(&browser, 375).await;
    browser.set_window_size(1440, 900).await.unwrap();

    click(&browser, "a[data-detail=financial]").await;
    wait_for_text(&browser, "#detail-title", "Financial Management").await;
    let versions = text_of(&browser, "[data-table=versions] tbody").await;
    assert!(versions.contains("1.2.0"), "{versions}");
    let permissions = text_of(&browser, "[data-table=permissions]").await;
    assert!(
        permissions.contains("financial:invoices.read") && permissions.contains("View invoices"),
        "{permissions}"
    );
    let dependencies = text_of(&browser, "[data-table=dependencies]").await;
    assert!(dependencies.contains("platform"), "{dependencies}");
    let schema = text_of(&browser, "[data-table=schema]").await;
    let tax = schema
        .lines()
        .find(|l| l.starts_with("tax_rate"))
        .unwrap_or_else(|| panic!("no tax_rate in {schema}"));
    assert!(tax.contains("number") && tax.contains("maximum 1"), "{tax}");
    let faint = low_contrast(&browser).await;
    assert!(faint.is_empty(), "below WCAG AA contrast: {faint:#?}");
    screenshot(&browser, "module-detail").await;
    usable(&browser).await;
    fits(&browser, 1440).await;
    fits(&browser, 375).await;

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_sets_the_tenant_configuration_and_sees_each_value_s_tier() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-admin=modules]").await;
    click(&browser, "a[data-tenant-config=financial]").await;
    // The tenant's form: its own value of the rate; the resolved values for acme-de, each
    // with the tier it came from.
    let about = text_of(&browser, "#config-tax_rate-about").await;
    assert!(about.contains("Now 0.2, from the tenant tier"), "{about}");
    for (key, tier) in [
        ("tax_rate", "company"),
        ("currency", "tenant"),
        ("payment_terms_days", "module"),
    ] {
        let row = text_of(&browser, &format!("tr[data-resolved={key}]")).await;
        assert!(row.ends_with(tier), "{key}: {row}");
    }

    type_into(&browser, "#config-currency", "euro").await;
    click(&browser, ".config-form button[type=submit]").await;
    let refused = wait_for_text(&browser, "[data-problem-for=currency]", "euro").await;
    assert!(refused.contains("does not match"), "{refused}");

    type_into(&browser, "#config-currency", "EUR").await;
    type_into(&browser, "#config-payment_terms_days", "45").await;
    click(&browser, ".config-form button[type=submit]").await;
    wait_for_text(
        &browser,
        ".config-form [role=status]",
        "Saved for tenant acme.",
    )
    .await;
    let row = wait_for_text(&browser, "tr[data-resolved=payment_terms_days]", "45").await;
    assert!(row.ends_with("tenant"), "now the tenant's: {row}");
    let about = text_of(&browser, "#config-payment_terms_days-about").await;
    assert!(about.contains("Now 45, from the tenant tier"), "{about}");
    let faint = low_contrast(&browser).await;
    assert!(faint.is_empty(), "below WCAG AA contrast: {faint:#?}");
    screenshot(&browser, "tenant-configuration").await;
    usable(&browser).await;
    fits(&browser, 1440).await;
    fits(&browser, 375).await;

    let refused =
        "/modules/financial - Failed to load resource: the server responded with a status of 422";
    let errors = console_errors(&browser, &[refused]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_flips_a_feature_toggle() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-admin=modules]").await;
    click(&browser, "a[data-features=financial]").await;
    let reporting = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#feature-reporting"))
        .await
        .unwrap();
    assert!(!reporting.is_selected().await.unwrap(), "off by default");
    reporting.click().await.unwrap();
    wait_for_text(
        &browser,
        "#feature-reporting ~ [role=status]",
        "On for the tenant.",
    )
    .await;
    click(&browser, "#feature-invoicing").await;
    wait_for_text(
        &browser,
        "#feature-invoicing ~ [role=status]",
        "Off for the tenant.",
    )
    .await;
    screenshot(&browser, "features").await;
    usable(&browser).await;

    // What the platform resolves, as a module would read it.
    let alice = SignedIn::as_user(&platform.url, "alice").await;
    let (status, resolved) = alice
        .call(
            Method::GET,
            "/v1/tenants/acme/modules/financial/config",
            None,
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["features"], json!(["payments", "reporting"]));

    // Shown so again on a fresh load of the page.
    click(&browser, "a[data-admin=modules]").await;
    click(&browser, "a[data-features=financial]").await;
    wait_for_text(&browser, "#feature-list", "reporting").await;
    for (feature, on) in [
        ("reporting", true),
        ("invoicing", false),
        ("payments", true),
    ] {
        let selected = browser
            .find(Locator::Css(&format!("#feature-{feature}")))
            .await
            .unwrap()
            .is_selected()
            .await
            .unwrap();
        assert_eq!(selected, on, "{feature}");
    }
    fits(&browser, 375).await;

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_assigns_a_role_and_sees_it_in_the_audit_log() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-admin=roles]").await;
    wait_for_text(&browser, "#main", "No role yet").await;
    // Changes made elsewhere (the API), so that the audit log has more than a page.
    let alice = SignedIn::as_user(&platform.url, "alice").await;
    for i in 0..15 {
        let grant = json!({"permissions": ["financial:invoices.read"]});
        let path = format!("/v1/tenants/acme/roles/clerk-{i}");
        let (status, body) = alice.call(Method::PUT, &path, Some(grant)).await;
        assert_eq!(status, 200, "{body}");
    }

    // A permission no installed module declares is refused beside its field.
    type_into(&browser, "#role-name", "accountant").await;
    type_into(
        &browser,
        "#role-permissions",
        "financial:invoices.read financial:invoices.reed",
    )
    .await;
    click(
        &browser,
        "form[aria-labelledby=role-form-title] button[type=submit]",
    )
    .await;
    let refused = text_of(&browser, "[data-problem-for=role-permissions]").await;
    assert!(refused.contains("invoices.reed"), "{refused}");
    type_into(&browser, "#role-permissions", "financial:invoices.read").await;
    click(
        &browser,
        "form[aria-labelledby=role-form-title] button[type=submit]",
    )
    .await;
    let role = text_of(&browser, "tr[data-role=accountant]").await;
    assert!(role.contains("financial:invoices.read"), "{role}");

    // A user id with a space is refused beside the user field; then bob gets the role in
    // the German company.
    type_into(&browser, "#assign-user", "bob smith").await;
    click(
        &browser,
        "form[aria-labelledby=assign-title] button[type=submit]",
    )
    .await;
    let refused = text_of(&browser, "[data-problem-for=assign-user]").await;
    assert!(refused.contains("user"), "{refused}");
    type_into(&browser, "#assign-user", "bob").await;
    choose(&browser, "#assign-role", "accountant").await;
    choose(&browser, "#assign-scope", "acme-de").await;
    click(
        &browser,
        "form[aria-labelledby=assign-title] button[type=submit]",
    )
    .await;
    let row = wait_for_text(&browser, "tr[data-user=bob]", "accountant in acme-de").await;
    assert!(row.starts_with("bob"), "{row}");
    screenshot(&browser, "roles").await;
    usable(&browser).await;
    fits(&browser, 375).await;
    browser.set_window_size(1440, 900).await.unwrap();

    click(&browser, "a[data-admin=audit]").await;
    let newest = text_of(&browser, "[data-table=audit] tbody tr:first-child").await;
    assert!(
        newest.contains("alice")
            && newest.contains("user.roles.changed")
            && newest.contains("user:bob"),
        "{newest}"
    );
    assert!(newest.contains("accountant"), "the detail: {newest}");
    let role_change = text_of(&browser, "tr[data-audit=\"role.changed\"]").await;
    assert!(role_change.contains("role:accountant"), "{role_change}");
    screenshot(&browser, "audit-log").await;
    usable(&browser).await;
    // Twenty to a page: the tenant's creation is on the second.
    click(&browser, "button[data-page=older]").await;
    wait_for_text(&browser, "#audit-page", "Page 2").await;
    let created = text_of(&browser, "tr[data-audit=\"tenant.created\"]").await;
    assert!(created.contains("tenant:acme"), "{created}");
    click(&browser, "button[data-page=newer]").await;
    wait_for_text(&browser, "#audit-page", "Page 1").await;
    let newest = text_of(&browser, "[data-table=audit] tbody tr:first-child").await;
    assert!(newest.contains("user:bob"), "{newest}");
    fits(&browser, 1440).await;
    fits(&browser, 375).await;

    let errors = console_errors(
        &browser,
        &[
            "/roles/accountant - Failed to load resource: the server responded with a status of 422",
            "/users/bob%20smith/roles - Failed to load resource: the server responded with a status of 422",
        ],
    )
    .await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

/// A module with no backend of its own to start: installed with an `endpoint`, no hooks.
fn small_manifest(name: &str, subscribes: &serde_json::Value) -> serde_json::Value {
    json!({
        "name": name,
        "display_name": format!("The {name}"),
        "version": "0.1.0",
        "description": "A test module",
        "author": {"name": "Plinth tests", "email": "tests@example.invalid"},
        "backend": {
            "type": "lambda", "runtime": "provided.al2023", "framework": "axum",
            "entry_point": "bootstrap", "image": format!("plinth-{name}:0.1.0"), "memory": 128,
            "health_check": "/health", "api_prefix": format!("/api/v1/{name}")
        },
        "dependencies": {"platform_version": ">=2.0.0"},
        "permissions": [{"code": format!("{name}:things.read"), "description": "See things"}],
        "routes": [],
        "configuration": {"defaults": {}, "schema": {"type": "object"}},
        "events": {"subscribes": subscribes},
        "subscription_tier": "free",
        "category": "testing",
        "tags": ["test"]
    })
}

/// The steps of an install and of an uninstall without dropping data (installation.rs).
const INSTALL_STEPS: [&str; 9] = [
    "validate",
    "check_dependencies",
    "issue_api_key",
    "deploy",
    "pre_install",
    "create_tables",
    "register_permissions",
    "create_event_rules",
    "post_install",
];
const UNINSTALL_STEPS: [&str; 6] = [
    "pre_uninstall",
    "remove_event_rules",
    "unregister_permissions",
    "post_uninstall",
    "undeploy",
    "revoke_api_keys",
];

/// Publishes the manifest at `path` from the publish form and waits for it to say `said`.
async fn publish(browser: &Client, path: &std::path::Path, said: &str) {
    browser
        .find(Locator::Css("#publish-file"))
        .await
        .unwrap()
        .send_keys(path.to_str().unwrap())
        .await
        .unwrap();
    click(
        browser,
        "form[aria-labelledby=publish-title] button[type=submit]",
    )
    .await;
    wait_for_text(
        browser,
        "form[aria-labelledby=publish-title] [role=status]",
        said,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_installs_a_module_and_watches_each_saga_step_then_uninstalls_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let manifest = platform.data.path().join("greeter-manifest.json");
    std::fs::write(&manifest, small_manifest("greeter", &json!([])).to_string()).unwrap();
    let browser = browser(&driver).await;
    sign_in_as_operator(&browser, &platform.url).await;
    click(&browser, "a[data-admin=lifecycle]").await;

    // Publishing nothing, then the manifest.
    click(
        &browser,
        "form[aria-labelledby=publish-title] button[type=submit]",
    )
    .await;
    wait_for_text(
        &browser,
        "form[aria-labelledby=publish-title] [role=status]",
        "Choose a manifest.json",
    )
    .await;
    publish(&browser, &manifest, "Published greeter 0.1.0.").await;
    wait_for_text(&browser, "#life-current", "Not installed.").await;

    // A backend that is already running (nothing listens there: the saga does not call it
    // when the manifest declares no hook).
    type_into(&browser, "#life-endpoint", "http://127.0.0.1:9").await;
    click(&browser, "button[data-op=install]").await;
    wait_for_text(&browser, "#steps-title", "install greeter 0.1.0: installed").await;
    let done = vec!["done"; INSTALL_STEPS.len()];
    wait_for_all(
        &browser,
        "#saga-steps [data-step]",
        "data-step",
        &INSTALL_STEPS,
    )
    .await;
    wait_for_all(
        &browser,
        "#saga-steps [data-step]",
        "data-step-status",
        &done,
    )
    .await;
    // Each step was said as it finished, in order.
    wait_for_all(
        &browser,
        "#saga-feed [data-feed]",
        "data-feed",
        &INSTALL_STEPS,
    )
    .await;
    let current = text_of(&browser, "#life-current").await;
    assert!(current.starts_with("Serving 0.1.0"), "{current}");
    screenshot(&browser, "install-steps").await;
    usable(&browser).await;
    fits(&browser, 375).await;
    browser.set_window_size(1440, 900).await.unwrap();

    // A second version: upgraded to, then rolled back from.
    let mut next = small_manifest("greeter", &json!([]));
    next["version"] = json!("0.2.0");
    let second = platform.data.path().join("greeter-0.2.0.json");
    std::fs::write(&second, next.to_string()).unwrap();
    publish(&browser, &second, "Published greeter 0.2.0.").await;
    choose(&browser, "#life-version", "0.2.0").await;
    click(&browser, "button[data-op=upgrade]").await;
    wait_for_text(&browser, "#steps-title", "upgrade greeter 0.2.0: installed").await;
    wait_for_text(&browser, "#life-current", "Serving 0.2.0").await;
    click(&browser, "button[data-op=rollback]").await;
    wait_for_text(
        &browser,
        "#steps-title",
        "rollback greeter 0.1.0: installed",
    )
    .await;
    wait_for_text(&browser, "#life-current", "Serving 0.1.0").await;

    click(&browser, "button[data-op=uninstall]").await;
    wait_for_text(
        &browser,
        "#steps-title",
        "uninstall greeter 0.1.0: uninstalled",
    )
    .await;
    let done = vec!["done"; UNINSTALL_STEPS.len()];
    wait_for_all(
        &browser,
        "#saga-steps [data-step]",
        "data-step",
        &UNINSTALL_STEPS,
    )
    .await;
    wait_for_all(
        &browser,
        "#saga-steps [data-step]",
        "data-step-status",
        &done,
    )
    .await;
    wait_for_all(
        &browser,
        "#saga-feed [data-feed]",
        "data-feed",
        &UNINSTALL_STEPS,
    )
    .await;
    let current = text_of(&browser, "#life-current").await;
    assert!(current.starts_with("Not serving"), "{current}");

    // Rolling back with no earlier version to go back to is refused, and said.
    click(&browser, "button[data-op=rollback]").await;
    let refused = text_of(
        &browser,
        "form[aria-labelledby=operate-title] [role=status] [role=alert]",
    )
    .await;
    assert!(
        refused.starts_with("409") || refused.starts_with("404"),
        "{refused}"
    );

    let errors = console_errors(
        &browser,
        &[
            "/greeter/installation - Failed to load resource: the server responded with a status of 404",
            "/greeter/rollback - Failed to load resource",
        ],
    )
    .await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_issues_rotates_and_revokes_an_api_key_seeing_the_secret_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    sign_in_as_operator(&browser, &platform.url).await;
    click(&browser, "a[data-admin=api-keys]").await;
    choose(&browser, "#keys-module", "warehouse").await;
    // The key its install issued.
    text_of(&browser, "[data-table=keys] tbody tr").await;

    click(&browser, "button[data-key-op=issue]").await;
    let secret = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#new-secret-value"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(secret.len() >= 32, "a key: {secret:?}");
    let issued = wait_for_issued(&browser).await;
    let row = text_of(&browser, &format!("tr[data-key=\"{issued}\"]")).await;
    assert!(row.contains("until revoked"), "{row}");
    assert!(
        !row.contains(&secret),
        "the list shows a prefix, never the key"
    );
    screenshot(&browser, "api-keys").await;
    usable(&browser).await;

    // Shown once: the page opened again has no trace of it.
    click(&browser, "a[data-admin=dead-letters]").await;
    click(&browser, "a[data-admin=api-keys]").await;
    choose(&browser, "#keys-module", "warehouse").await;
    text_of(&browser, &format!("tr[data-key=\"{issued}\"]")).await;
    let page = browser.source().await.unwrap();
    assert!(!page.contains(&secret), "the secret is gone from the page");
    assert!(
        browser
            .find(Locator::Css("#new-secret-value"))
            .await
            .is_err()
    );

    // A rotation's grace longer than a year is refused beside its field.
    type_into(&browser, "#keys-grace", "99999999").await;
    click(&browser, "button[data-key-op=rotate]").await;
    let refused = text_of(&browser, "[data-problem-for=keys-grace]").await;
    assert!(refused.contains("more than a year"), "{refused}");
    type_into(&browser, "#keys-grace", "600").await;
    click(&browser, "button[data-key-op=rotate]").await;
    let rotated = wait_for_text(&browser, "form [role=status]", "stop working in 600 s").await;
    let rotated_id = browser
        .find(Locator::Css("form [role=status]"))
        .await
        .unwrap()
        .attr("data-issued")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        rotated.contains(&rotated_id) && rotated_id != issued,
        "{rotated}"
    );
    let old = text_of(&browser, &format!("tr[data-key=\"{issued}\"]")).await;
    assert!(
        !old.contains("until revoked"),
        "the older key now expires: {old}"
    );
    let new = text_of(&browser, &format!("tr[data-key=\"{rotated_id}\"]")).await;
    assert!(new.contains("until revoked"), "{new}");

    // Revoke asks twice.
    let revoke = format!("button[data-revoke=\"{rotated_id}\"]");
    click(&browser, &revoke).await;
    wait_for_text(&browser, &revoke, "Confirm revoke").await;
    click(&browser, &revoke).await;
    wait_for_text(&browser, "form [role=status]", "revoked").await;
    let deadline = std::time::Instant::now() + WAIT;
    while browser
        .find(Locator::Css(&format!("tr[data-key=\"{rotated_id}\"]")))
        .await
        .is_ok()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key is still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fits(&browser, 1440).await;
    fits(&browser, 375).await;

    let errors = console_errors(
        &browser,
        &["/warehouse/api-keys - Failed to load resource: the server responded with a status of 422"],
    )
    .await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

/// The id of the key the API-keys page just issued (its status says it).
async fn wait_for_issued(browser: &Client) -> String {
    wait_for_text(browser, "form [role=status]", "Issued key").await;
    browser
        .find(Locator::Css("form [role=status]"))
        .await
        .unwrap()
        .attr("data-issued")
        .await
        .unwrap()
        .expect("the issued key's id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_replays_a_dead_letter() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    // A module whose backend is down when acme enables it: the platform's event about that
    // fails every retry and is dead-lettered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let operator = SignedIn::as_user(&platform.url, "operator").await;
    let subscribes = json!([{
        "name": "enabled",
        "pattern": {"source": ["plinth.registry"], "detail-type": ["tenant.module.enabled"]},
        "path": "/_plinth/events/enabled"
    }]);
    let (status, body) = operator
        .call(
            Method::POST,
            "/v1/modules",
            Some(small_manifest("listener", &subscribes)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let install = json!({"version": "0.1.0", "endpoint": format!("http://127.0.0.1:{port}")});
    let (status, body) = operator
        .call(Method::POST, "/v1/modules/listener/install", Some(install))
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, installation) = operator
            .call(Method::GET, "/v1/modules/listener/installation", None)
            .await;
        if installation["status"] == "installed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{installation}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alice = SignedIn::as_user(&platform.url, "alice").await;
    let (status, body) = alice
        .call(
            Method::PUT,
            "/v1/tenants/acme/modules/listener",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, letters) = operator.call(Method::GET, "/v1/dead-letters", None).await;
        if letters.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter: {letters}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let browser = browser(&driver).await;
    sign_in_as_operator(&browser, &platform.url).await;
    click(&browser, "a[data-admin=dead-letters]").await;
    let row = text_of(&browser, "[data-table=dead-letters] tbody tr").await;
    assert!(
        row.contains("listener") && row.contains("tenant.module.enabled"),
        "{row}"
    );
    screenshot(&browser, "dead-letters").await;
    usable(&browser).await;
    fits(&browser, 375).await;
    browser.set_window_size(1440, 900).await.unwrap();

    // The backend is up now: the replay delivers it, and the list is empty.
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = received.clone();
    let backend = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            "ok"
        }
    });
    let socket = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(async move { axum::serve(socket, backend).await });
    click(&browser, "#replay").await;
    wait_for_text(
        &browser,
        "#main [role=status]",
        "Replayed: 1 delivered, 0 failed again.",
    )
    .await;
    wait_for_text(&browser, "#main", "No dead letters").await;
    assert!(
        received.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the backend got it"
    );
    server.abort();

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}
