//! The console's admin pages in headless Chromium (docs/console.md, "Administration"): the
//! marketplace and a tenant admin's configuration, features, roles and audit log (a platform
//! admin's pages are in `browser_platform.rs`, which shares the helpers here). Every test fails
//! on any error the browser's console logged but those it names.

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
pub(crate) async fn sign_in_as_operator(browser: &Client, url: &str) {
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

/// Picks `value` in the `<select>` `css` finds, once the page has given it that option (its
/// options may come from a call still under way).
pub(crate) async fn choose(browser: &Client, css: &str, value: &str) {
    let option = format!("{css} option[value=\"{value}\"]");
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&option))
        .await
        .unwrap_or_else(|e| panic!("{css} never had an option {value}: {e}"));
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} is gone: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} has no option {value}: {e}"));
}

/// Replaces what the field `css` holds with `text`.
pub(crate) async fn type_into(browser: &Client, css: &str, text: &str) {
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
pub(crate) async fn all_of(browser: &Client, css: &str, attribute: &str) -> Vec<String> {
    let mut found = Vec::new();
    for element in browser.find_all(Locator::Css(css)).await.unwrap() {
        found.push(element.attr(attribute).await.unwrap().unwrap_or_default());
    }
    found
}

/// Waits until the elements `css` finds carry exactly `wanted` as `attribute`.
pub(crate) async fn wait_for_all(browser: &Client, css: &str, attribute: &str, wanted: &[&str]) {
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
pub(crate) async fn unlabelled(browser: &Client) -> (Vec<String>, usize) {
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
pub(crate) async fn usable(browser: &Client) {
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
pub(crate) async fn fits(browser: &Client, width: u32) {
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
