//! The crash drill (issue 12, "a crash in the middle"): the installer function's process is
//! killed right after each saga step is stored, in turn (the `DynamoTap` on its DynamoDB
//! endpoint), and a new one started, as Lambda starts a new runtime. The invocation that died
//! fails as Lambda reports it (`Runtime.ExitError`), the bus delivers the request again, and
//! the new process resumes the saga. Each time the module must end installed exactly once —
//! one function, one API key, one instance, its rules and tables — and uninstall to nothing.

use serde_json::Value;

use super::api_gateway::{ApiGateway, Request};
use super::platform::{Cell, FINANCIAL_FUNCTION};
use super::{
    Users, expect, function_tags, install_financial, installation_reaches, module_rules,
    module_tables, names, publish_the_first_version,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installer_killed_after_each_stored_step_is_resumed_to_one_install() {
    let _one = super::ONE_CELL_AT_A_TIME.lock().await;
    let test = "the_installer_killed_after_each_stored_step_is_resumed_to_one_install";
    let Some(cell) = Cell::start(test).await else {
        return;
    };
    let api = ApiGateway { cell: &cell };
    let users = Users::signed_with(&cell.jwt_secret().await);
    publish_the_first_version(&api, &users).await;

    let mut crashed_after = Vec::new();
    for n in 1..=40 {
        let fired = cell.tap.fired();
        cell.tap.arm(n);
        let installed = install_financial(&api, &users).await;
        cell.tap.disarm();
        let crashed = cell.tap.fired() > fired;
        let at = if crashed {
            format!("killed after stored step {n}")
        } else {
            "not killed".to_owned()
        };
        installed_once(&api, &users, &installed, &at).await;
        uninstalled_to_nothing(&api, &users, &installed, &at).await;
        if !crashed {
            break;
        }
        crashed_after.push(n);
    }
    assert!(
        crashed_after.len() >= 5,
        "the install stores at least five steps, each a crash point: {crashed_after:?}"
    );
    eprintln!(
        "crash drill: the installer was killed after each of {} stored steps of the install, \
         and resumed to one install each time",
        crashed_after.len()
    );
}

/// Installed once, whatever the crash: one function, one API key, one instance (the
/// function), the rules and tables the installation names, on moto.
async fn installed_once(api: &ApiGateway<'_>, users: &Users, installed: &Value, at: &str) {
    assert_eq!(installed["installed_version"], "1.2.0", "{at}: {installed}");
    let tags = function_tags(api.cell, FINANCIAL_FUNCTION).await;
    assert!(tags.is_some(), "{at}: financial's function is missing");
    for (path, what) in [
        ("/api/v1/modules/financial/api-keys", "API key"),
        ("/api/v1/modules/financial/instances", "instance"),
    ] {
        let listed = api
            .send(Request::new("GET", path).bearer(&users.operator))
            .await;
        expect(&listed, 200, path);
        let count = listed.json().as_array().map_or(0, Vec::len);
        assert_eq!(count, 1, "{at}: one {what}, not {count}: {}", listed.body);
    }
    let rules = names(installed, "rules");
    assert!(!rules.is_empty(), "{at}: {installed}");
    assert_eq!(
        module_rules(api.cell, "financial").await,
        rules,
        "{at}: the rules on the bus"
    );
    let tables = names(installed, "tables");
    assert_eq!(
        module_tables(api.cell, &tables).await,
        tables,
        "{at}: the tables"
    );
}

/// Uninstalled, dropping the data (the tap disarmed): nothing of financial left on moto.
async fn uninstalled_to_nothing(api: &ApiGateway<'_>, users: &Users, installed: &Value, at: &str) {
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
    assert_eq!(
        function_tags(api.cell, FINANCIAL_FUNCTION).await,
        None,
        "{at}: the function is left after the uninstall"
    );
    assert_eq!(
        module_rules(api.cell, "financial").await,
        Vec::<String>::new(),
        "{at}: rules left"
    );
    let tables = names(installed, "tables");
    assert_eq!(
        module_tables(api.cell, &tables).await,
        Vec::<String>::new(),
        "{at}: tables left"
    );
}
