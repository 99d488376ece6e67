//! The console in headless Chromium, driven through chromedriver (Debian's `chromium` and
//! `chromium-driver`, which `tests/run` installs when missing), against `plinth up --demo`
//! started here. Every test fails on any error the browser's console logged.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use plinth_local::platform::IdentitySettings;

use crate::provider::Provider;
use crate::support::{Platform, workspace_root};

/// One browser at a time: five Chromiums at once on a 2-core machine measure the machine, not
/// the console (the first page's time is asserted).
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the browser may take to show what a step waits for.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a free port, stopped when dropped.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver, or `None` (the test skips, saying why) when it is not installed outside CI.
pub(crate) async fn chromedriver() -> Option<Driver> {
    let installed = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists());
    let Some(binary) = installed else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver is missing: tests/run installs chromium and chromium-driver"
        );
        eprintln!("skipped: no chromedriver (tests/run installs chromium and chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = std::time::Instant::now() + WAIT;
    while reqwest::get(format!("{}/status", driver.url))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(driver)
}

/// A headless Chromium session, 1440 px wide, keeping its console's log.
pub(crate) async fn browser(driver: &Driver) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,900", "--no-first-run"]
        },
        "goog:loggingPrefs": {"browser": "ALL"}
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// chromedriver's log of the browser's console since the last read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(r#"{"type": "browser"}"#.to_owned()),
        )
    }
}

/// The errors the browser's console logged since the last read, but those `expected` names.
pub(crate) async fn console_errors(browser: &Client, expected: &[&str]) -> Vec<String> {
    let log = browser
        .issue_cmd(BrowserLog)
        .await
        .expect("the browser's log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .filter_map(|entry| entry["message"].as_str())
        .filter(|message| !expected.iter().any(|e| message.contains(e)))
        .map(str::to_owned)
        .collect()
}

/// The demo set up on a fresh platform.
pub(crate) async fn demo() -> Platform {
    demo_with(IdentitySettings::default()).await
}

/// The demo set up on a fresh platform whose users sign in as `identity` says.
async fn demo_with(identity: IdentitySettings) -> Platform {
    let platform = Platform::start_with(identity).await;
    platform
        .demo
        .run(&workspace_root().join("examples"))
        .await
        .expect("the demo is set up");
    platform
}

/// The text of the element `css` finds, once it shows (found again if the page replaces it).
pub(crate) async fn text_of(browser: &Client, css: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            return text;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{css} never showed; the page says: {}",
                page_text(browser).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the page shows, for a failure's message.
pub(crate) async fn page_text(browser: &Client) -> String {
    match browser.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(e) => format!("(no body: {e})"),
    }
}

/// Waits until the element `css` finds says `wanted`.
pub(crate) async fn wait_for_text(browser: &Client, css: &str, wanted: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(wanted) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} never said {wanted:?}; it says {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves what the browser shows as `{PLINTH_CONSOLE_SCREENSHOTS}/{name}.png` when that folder
/// is set (docs/console.md's pictures are made so).
pub(crate) async fn screenshot(browser: &Client, name: &str) {
    let Some(folder) = std::env::var_os("PLINTH_CONSOLE_SCREENSHOTS") else {
        return;
    };
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(
        std::path::Path::new(&folder).join(format!("{name}.png")),
        png,
    )
    .expect("the screenshot is saved");
}

/// Whether the page is wider than the window (a horizontal scroll bar).
pub(crate) async fn overflows(browser: &Client) -> bool {
    let script =
        "return document.documentElement.scrollWidth > document.documentElement.clientWidth";
    browser.execute(script, vec![]).await.unwrap() == json!(true)
}

/// Signs in as alice, acme's tenant admin, and waits for the menu; returns how long the
/// sign-in form took to be interactive after the navigation began, in milliseconds.
pub(crate) async fn sign_in_as_alice(browser: &Client, url: &str) -> f64 {
    browser.goto(&format!("{url}/")).await.unwrap();
    let user = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#sign-in-user"))
        .await
        .expect("the sign-in form");
    let interactive = browser
        .execute(
            "return performance.getEntriesByName('plinth:interactive')[0].startTime",
            vec![],
        )
        .await
        .expect("the shell marks when it is interactive")
        .as_f64()
        .expect("a time");
    screenshot(browser, "sign-in").await;
    user.select_by_value("alice").await.unwrap();
    browser
        .find(Locator::Css("form.sign-in button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(browser, "#signed-in-as", "alice · acme / acme-de").await;
    interactive
}

/// Fills the financial module's form and sends it.
async fn create_invoice(browser: &Client, customer: &str, amount: &str) {
    for (field, value) in [("#invoice-customer", customer), ("#invoice-amount", amount)] {
        browser
            .find(Locator::Css(field))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    click(browser, ".invoice-form button[type=submit]").await;
}

pub(crate) async fn click(browser: &Client, css: &str) {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never showed: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_tenant_admin_sees_its_modules_and_creates_invoices_with_each_companys_prefix_and_tax()
 {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    let interactive = sign_in_as_alice(&browser, &platform.url).await;
    // A cold load (empty cache, a new browser): the page, its files, the session's answer.
    eprintln!("console: the sign-in form was interactive {interactive:.0} ms after navigation");
    assert!(interactive < 1000.0, "{interactive} ms to interactive");

    let menu = text_of(&browser, "#module-menu").await;
    let entries: Vec<&str> = menu.lines().collect();
    assert_eq!(
        entries,
        ["Financial Management", "Notifications", "Warehouse"],
        "{menu}"
    );

    click(&browser, "a[data-module=financial]").await;
    let terms = text_of(&browser, "[data-terms]").await;
    assert!(terms.contains("numbers start with ACME-DE"), "{terms}");
    assert!(terms.contains("tax 19 %"), "{terms}");
    create_invoice(&browser, "Globex", "1000").await;
    let row = text_of(&browser, "tr[data-invoice=\"ACME-DE-1\"]").await;
    assert!(row.contains("ACME-DE-1"), "{row}");
    assert!(row.contains("Globex"), "{row}");
    assert!(
        row.contains("€190.00 (19 %)"),
        "the German company's tax: {row}"
    );
    assert!(row.contains("€1,190.00"), "{row}");
    // In the other company, its own configuration: the tenant's prefix and rate.
    browser
        .find(Locator::Css("#company"))
        .await
        .unwrap()
        .select_by_value("acme-us")
        .await
        .unwrap();
    let terms = wait_for_text(&browser, "[data-terms]", "Company acme-us").await;
    assert!(terms.contains("numbers start with ACME,"), "{terms}");
    assert!(terms.contains("tax 20 %"), "{terms}");
    create_invoice(&browser, "Initech", "500").await;
    let row = text_of(&browser, "tr[data-invoice=\"ACME-1\"]").await;
    assert!(row.contains("€100.00 (20 %)"), "the tenant's tax: {row}");
    assert!(
        browser
            .find(Locator::Css("tr[data-invoice=\"ACME-DE-1\"]"))
            .await
            .is_err(),
        "acme-us lists only its own invoices"
    );
    screenshot(&browser, "financial-1440").await;
    assert!(!overflows(&browser).await, "wider than 1440 px");
    let faint = low_contrast(&browser).await;
    assert!(faint.is_empty(), "below WCAG AA contrast: {faint:#?}");
    browser.set_window_size(375, 812).await.unwrap();
    text_of(&browser, "tr[data-invoice=\"ACME-1\"]").await;
    screenshot(&browser, "financial-375").await;
    assert!(!overflows(&browser).await, "wider than 375 px");

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_disables_and_enables_a_module_and_the_menu_follows() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-admin=modules]").await;
    click(&browser, "#enable-warehouse").await;
    wait_for_text(&browser, "#enable-warehouse ~ [role=status]", "Disabled.").await;
    let menu = text_of(&browser, "#module-menu").await;
    assert_eq!(
        menu.lines().collect::<Vec<_>>(),
        ["Financial Management", "Notifications"]
    );

    click(&browser, "#enable-warehouse").await;
    wait_for_text(&browser, "#enable-warehouse ~ [role=status]", "Enabled.").await;
    let menu = text_of(&browser, "#module-menu").await;
    assert_eq!(
        menu.lines().collect::<Vec<_>>(),
        ["Financial Management", "Notifications", "Warehouse"]
    );
    screenshot(&browser, "enable-modules").await;

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_sets_a_companys_tax_rate_in_the_form_an_invalid_one_refused_beside_its_field_and_the_next_invoice_takes_it()
 {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-admin=modules]").await;
    click(&browser, "a[data-configure=financial]").await;
    let about = text_of(&browser, "#config-tax_rate-about").await;
    assert!(about.contains("Now 0.19, from the company tier"), "{about}");

    let rate = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#config-tax_rate"))
        .await
        .unwrap();
    rate.clear().await.unwrap();
    rate.send_keys("7").await.unwrap();
    click(&browser, ".config-form button[type=submit]").await;
    wait_for_text(&browser, "[data-problem-for=tax_rate]", "must be at most 1").await;
    let faint = low_contrast(&browser).await;
    assert!(faint.is_empty(), "below WCAG AA contrast: {faint:#?}");
    assert_eq!(
        rate.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    screenshot(&browser, "configure-refused").await;

    rate.clear().await.unwrap();
    rate.send_keys("0.25").await.unwrap();
    click(&browser, ".config-form button[type=submit]").await;
    wait_for_text(&browser, ".config-form [role=status]", "Saved for acme-de.").await;
    let about = text_of(&browser, "#config-tax_rate-about").await;
    assert!(about.contains("Now 0.25, from the company tier"), "{about}");

    click(&browser, "a[data-module=financial]").await;
    wait_for_text(&browser, "[data-terms]", "tax 25 %").await;
    create_invoice(&browser, "Hooli", "100").await;
    let row = text_of(&browser, "tr[data-invoice=\"ACME-DE-1\"]").await;
    assert!(row.contains("€25.00 (25 %)"), "the new rate: {row}");

    // The refused save is a 422 the browser reports; nothing else may be.
    let refused = "companies/acme-de/modules/financial - Failed to load resource: the server responded with a status of 422";
    let errors = console_errors(&browser, &[refused]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_operator_sees_each_installed_module_its_version_and_its_instances_health() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    browser.goto(&format!("{}/", platform.url)).await.unwrap();
    let user = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#sign-in-user"))
        .await
        .expect("the sign-in form");
    user.select_by_value("operator").await.unwrap();
    click(&browser, "form.sign-in button[type=submit]").await;
    click(&browser, "a[data-admin=installed]").await;
    let financial = wait_for_text(&browser, "tr[data-installed=financial]", "1 of 1 healthy").await;
    assert_eq!(
        financial.split(['\t', ' ']).collect::<Vec<_>>().join(" "),
        "Financial Management 1.2.0 installed 1 of 1 healthy"
    );
    for module in ["notifications", "warehouse"] {
        let row = wait_for_text(
            &browser,
            &format!("tr[data-installed={module}]"),
            "1 of 1 healthy",
        )
        .await;
        assert!(row.contains("1.0.0 installed"), "{row}");
    }
    screenshot(&browser, "installed-modules").await;
    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

/// The page's text whose contrast with its background is below WCAG AA (4.5:1, or 3:1 for
/// large text), as `text: ratio`.
pub(crate) async fn low_contrast(browser: &Client) -> Vec<String> {
    let script = r#"
        const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
        const rgb = (text) => (text.match(/[\d.]+/g) || []).map(Number);
        const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
        const background = (e) => {
            for (; e; e = e.parentElement) {
                const c = rgb(getComputedStyle(e).backgroundColor);
                if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
            }
            return [255, 255, 255];
        };
        const found = [];
        for (const e of document.querySelectorAll('body *')) {
            const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
            if (!own || !e.getClientRects().length) continue;
            const style = getComputedStyle(e);
            const a = luminance(rgb(style.color)), b = luminance(background(e));
            const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
            const large = size >= 24 || (bold && size >= 18.66);
            if (ratio < (large ? 3 : 4.5)) found.push(`${e.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
        }
        return found;"#;
    let answer = browser.execute(script, vec![]).await.unwrap();
    answer
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Presses `key` in the element that has the focus (looked up again should the page have
/// replaced it meanwhile).
async fn press(browser: &Client, key: fantoccini::key::Key) {
    let mut last = None;
    for _ in 0..3 {
        let focused = browser.active_element().await.expect("a focused element");
        match focused.send_keys(&char::from(key).to_string()).await {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("pressing a key: {last:?}");
}

/// What has the focus: its `id`, else its `data-module`, and whether its outline shows.
async fn focused(browser: &Client) -> (String, bool) {
    let script = "const e = document.activeElement; const style = getComputedStyle(e); \
        return [e.id || e.dataset.module || e.tagName, style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2];";
    let answer = browser.execute(script, vec![]).await.unwrap();
    (
        answer[0].as_str().unwrap_or_default().to_owned(),
        answer[1] == json!(true),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_and_opening_a_module_work_from_the_keyboard_alone_with_a_visible_focus() {
    use fantoccini::key::Key;
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    browser.goto(&format!("{}/", platform.url)).await.unwrap();
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#sign-in-user"))
        .await
        .expect("the sign-in form");
    assert_eq!(
        focused(&browser).await.0,
        "sign-in-user",
        "the form takes the focus"
    );
    press(&browser, Key::Tab).await;
    press(&browser, Key::Enter).await;
    wait_for_text(&browser, "#signed-in-as", "alice · acme / acme-de").await;
    // The menu is built after the sign-in shows: Tab once it is there.
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("[data-module=\"financial\"]"))
        .await
        .expect("the menu's financial entry");

    // Tab through the header to the menu's first module.
    let mut reached = false;
    for _ in 0..12 {
        press(&browser, Key::Tab).await;
        let (now, visible) = focused(&browser).await;
        assert!(visible, "{now} has the focus with no visible outline");
        if now == "financial" {
            reached = true;
            break;
        }
    }
    assert!(
        reached,
        "Tab never reached the financial module's menu entry"
    );
    press(&browser, Key::Enter).await;
    wait_for_text(&browser, "[data-terms]", "numbers start with ACME-DE").await;
    assert_eq!(
        focused(&browser).await.0,
        "main",
        "the page takes the focus"
    );

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_bundle_shows_its_error_in_its_own_panel_and_the_other_modules_keep_working() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    // The financial module's published bundle, broken where it is stored: it does not parse
    // (and so no longer matches its integrity either).
    let staged = stored_bundle_file(&platform, "financial", "1.2.0", "module.js");
    std::fs::write(&staged, "export default {").unwrap();

    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-module=financial]").await;
    let failure = text_of(&browser, "[data-module-panel=financial] [role=alert]").await;
    assert!(
        failure.contains("cannot load financial's bundle module.js"),
        "{failure}"
    );

    // The menu still works, and the notifications module's sandboxed frame answers.
    click(&browser, "a[data-module=notifications]").await;
    let frame = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("[data-module-panel=notifications] iframe"))
        .await
        .expect("the notifications frame");
    assert_eq!(
        frame.attr("sandbox").await.unwrap().as_deref(),
        Some("allow-scripts allow-forms")
    );
    frame.enter_frame().await.unwrap();
    wait_for_text(&browser, "#status", "0 sent for acme.").await;
    browser.enter_parent_frame().await.unwrap();
    screenshot(&browser, "micro-frontend").await;
    click(&browser, "a[data-module=financial]").await;
    text_of(&browser, "[data-module-panel=financial] [role=alert]").await;
    screenshot(&browser, "broken-bundle").await;

    let errors = console_errors(&browser, &["/console/bundles/financial/1.2.0/"]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

/// Where the registry stored `file` of `module` `version`'s published bundle (under the one
/// digest folder of that version).
fn stored_bundle_file(
    platform: &Platform,
    module: &str,
    version: &str,
    file: &str,
) -> std::path::PathBuf {
    let folder = platform
        .data
        .path()
        .join(format!("bundles/{module}/{version}"));
    let digests: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(digests.len(), 1, "one published bundle: {digests:?}");
    digests[0].join(file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_bundle_file_is_refused_by_its_integrity_and_shown_in_its_panel() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    // Replaced where it is stored by a module that would run and render: only its hash
    // differs from what was published.
    let stored = stored_bundle_file(&platform, "financial", "1.2.0", "module.js");
    std::fs::write(
        &stored,
        "export default { init() {}, async loadPage(page, container) { \
         container.textContent = 'tampered code ran'; } };",
    )
    .unwrap();

    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-module=financial]").await;
    let failure = text_of(&browser, "[data-module-panel=financial] [role=alert]").await;
    assert!(
        failure.contains("cannot load financial's bundle module.js")
            && failure.contains("does not match its published integrity sha384-"),
        "{failure}"
    );
    assert!(
        !page_text(&browser).await.contains("tampered code ran"),
        "the tampered file ran"
    );
    // The rest of the shell keeps working: another integrated module opens.
    click(&browser, "a[data-module=warehouse]").await;
    text_of(&browser, "[data-module-panel=warehouse] table").await;

    let errors = console_errors(&browser, &["/console/bundles/financial/1.2.0/"]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warehouse_module_s_page_lists_its_items() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    // An item of ACME GmbH, added through the console's API as alice (what the page calls).
    let http = reqwest::Client::new();
    let session = http
        .post(format!("{}/console/session", platform.url))
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    let cookie = crate::support::cookie_of(&session);
    let added = http
        .post(format!("{}/console/api/v1/warehouse/items", platform.url))
        .header("cookie", cookie)
        .header("sec-fetch-site", "same-origin")
        .header("x-plinth-company", "acme-de")
        .json(&json!({"sku": "BOLT-8", "name": "Hex bolt M8", "quantity": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201, "{:?}", added.text().await);

    let browser = browser(&driver).await;
    sign_in_as_alice(&browser, &platform.url).await;
    click(&browser, "a[data-module=warehouse]").await;
    let row = text_of(
        &browser,
        "[data-module-panel=warehouse] tr[data-item='BOLT-8']",
    )
    .await;
    assert!(
        row.contains("Hex bolt M8") && row.contains("3 pcs"),
        "{row}"
    );
    // 3 is at or below the default low-stock threshold (5).
    assert!(row.contains("low"), "{row}");

    // The page's form adds another, listed once created.
    for (field, value) in [
        ("#item-sku", "NUT-8"),
        ("#item-name", "Hex nut M8"),
        ("#item-quantity", "40"),
    ] {
        let input = browser.find(Locator::Css(field)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    click(&browser, ".invoice-form button[type=submit]").await;
    let row = text_of(
        &browser,
        "[data-module-panel=warehouse] tr[data-item='NUT-8']",
    )
    .await;
    assert!(row.contains("40 pcs") && row.contains("ok"), "{row}");
    screenshot(&browser, "warehouse").await;

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_through_the_identity_provider_and_sees_their_modules() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let provider = Provider::start().await;
    let platform = demo_with(provider.identity()).await;
    let browser = browser(&driver).await;
    browser.goto(&format!("{}/", platform.url)).await.unwrap();
    let button = text_of(&browser, "#sign-in-oidc").await;
    assert_eq!(button, "Sign in with your identity provider");
    assert!(
        browser.find(Locator::Css("#sign-in-user")).await.is_err(),
        "the development sign-in is off with a provider"
    );
    screenshot(&browser, "sign-in-oidc").await;
    click(&browser, "#sign-in-oidc").await;
    // To the provider, back to the callback, back to the shell: signed in as the ID token says.
    wait_for_text(&browser, "#signed-in-as", "alice · acme / acme-de").await;
    let menu = text_of(&browser, "#module-menu").await;
    let entries: Vec<&str> = menu.lines().collect();
    assert_eq!(
        entries,
        ["Financial Management", "Notifications", "Warehouse"],
        "{menu}"
    );
    assert_eq!(
        browser.current_url().await.unwrap().as_str(),
        format!("{}/", platform.url),
        "no code, state or token left in the address bar"
    );
    // No script of the page can read the session: not in cookies, not in storage.
    let readable = browser
        .execute(
            "return [document.cookie, localStorage.length, sessionStorage.length]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(readable, json!(["", 0, 0]));
    click(&browser, "a[data-module=financial]").await;
    let terms = text_of(&browser, "[data-terms]").await;
    assert!(terms.contains("numbers start with ACME-DE"), "{terms}");

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}
