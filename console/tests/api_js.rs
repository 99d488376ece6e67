//! The shell's module API client (`console/assets/api.js`), run by Node as the browser runs it:
//! the scoped client a module's frontend gets — an integrated module's, or a sandboxed
//! micro-frontend's through the shell — reaches its own routes only, however a path is spelled.
//! Review finding: `'/%2e%2e/tenants/acme/roles/x'` and `'/x\\..\\..\\tenants/…'` passed the
//! text check, and the browser resolved them to `/console/api/v1/tenants/…` with the session.

use std::process::Command;

#[test]
fn a_module_s_client_reaches_its_own_routes_only_however_the_path_is_spelled() {
    let Some(api) = asset("api.js") else {
        return;
    };
    let script = format!(
        r#"
const {{ moduleClient }} = await import({api:?});
const sent = [];
globalThis.fetch = async (url) => {{ sent.push(url); return {{ ok: true, text: async () => '' }}; }};
const client = moduleClient('evil', 'acme-de');
const refused = [];
for (const path of ['/%2e%2e/tenants/acme/roles/x', '/x\\..\\..\\tenants/acme', '/%2E%2E/%2e%2e/health',
                    '/../tenants', 'tenants', '/ok/%2f..', '/a/../../tenants']) {{
  try {{ await client.get(path); }} catch (e) {{ refused.push(path); continue; }}
}}
await client.get('/invoices?q=a%20b');
await client.post('/invoices/ACME-1/payments', {{}});
console.log(JSON.stringify({{ refused, sent }}));
"#,
        api = api.to_string_lossy()
    );
    let result = node_json(&script);
    assert_eq!(
        result["refused"].as_array().map(Vec::len),
        Some(7),
        "every escaping spelling refused: {result}"
    );
    assert_eq!(
        result["sent"],
        serde_json::json!([
            "/console/api/v1/evil/invoices?q=a%20b",
            "/console/api/v1/evil/invoices/ACME-1/payments"
        ]),
        "{result}"
    );
}

/// The path of `console/assets/{name}`, or `None` (the test skipped) without Node — a
/// failure where `CI` is set.
fn asset(name: &str) -> Option<std::path::PathBuf> {
    let found = Command::new("node").arg("--version").output();
    if !found.is_ok_and(|out| out.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and node is missing: the shell's scripts are tested with Node"
        );
        eprintln!("skipped: no node on PATH");
        return None;
    }
    Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(name),
    )
}

/// What `script` (an ES module) prints as JSON, run by Node.
fn node_json(script: &str) -> serde_json::Value {
    let out = Command::new("node")
        .args(["--input-type=module", "-e", script])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script's JSON")
}

#[test]
fn an_integrated_module_that_never_finishes_loading_gets_an_error_not_a_blank_panel() {
    let Some(loader) = asset("loader.js") else {
        return;
    };
    let script = format!(
        r#"
const {{ runModule }} = await import({loader:?});
const bundle = {{ module: 'stuck' }};
const outcomes = [];
const never = () => new Promise(() => {{}});
for (const ui of [
  {{ init: never, loadPage: async () => {{}} }},
  {{ init: async () => {{}}, loadPage: never }},
  {{ init: async () => {{}}, loadPage: async () => {{ throw new Error('no invoices table'); }} }},
  {{ init: async () => {{}}, loadPage: async (page, container) => {{ container.done = page; }} }},
]) {{
  const container = {{}};
  try {{ await runModule(ui, bundle, 'home', container, {{}}, 50); outcomes.push(`ok ${{container.done}}`); }}
  catch (e) {{ outcomes.push(e.message); }}
}}
console.log(JSON.stringify(outcomes));
"#,
        loader = loader.to_string_lossy()
    );
    assert_eq!(
        node_json(&script),
        serde_json::json!([
            "stuck's init did not finish within 0.05 s",
            "stuck's loadPage(\"home\") did not finish within 0.05 s",
            "no invoices table",
            "ok home"
        ])
    );
}
