//! `/accounts`: the company's chart of accounts; `/reports/summary`: what was invoiced, paid
//! and is outstanding, with the account balances.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use plinth_module_sdk::auth::require_permission;
use plinth_module_sdk::{ApiError, TenantContext};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Financial;
use crate::ledger::{Account, AccountKind};
use crate::money::Cents;

/// The account and report routes, relative to the module's API prefix.
pub fn routes() -> Router<Financial> {
    let read = || require_permission("financial:accounts.read");
    let write = || require_permission("financial:accounts.write");
    Router::new()
        .route("/accounts", get(list).route_layer(read()))
        .route(
            "/accounts",
            axum::routing::post(create).route_layer(write()),
        )
        .route("/accounts/{id}", get(read_one).route_layer(read()))
        .route(
            "/accounts/{id}",
            axum::routing::put(rename)
                .delete(close)
                .route_layer(write()),
        )
        .route(
            "/reports/{*report}",
            get(report).route_layer(require_permission("financial:reports.read")),
        )
}

type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn no_account(code: &str) -> ApiError {
    ApiError::not_found(format!("there is no account {code}"))
}

async fn list(
    State(app): State<Financial>,
    ctx: TenantContext,
) -> Result<Json<Vec<Account>>, ApiError> {
    let company = ctx.require_company()?;
    let books = app.ledger.books(&ctx.tenant_id, company).await?;
    Ok(Json(books.accounts.into_values().collect()))
}

async fn read_one(
    State(app): State<Financial>,
    ctx: TenantContext,
    Path(code): Path<String>,
) -> Result<Json<Account>, ApiError> {
    let company = ctx.require_company()?;
    let mut books = app.ledger.books(&ctx.tenant_id, company).await?;
    books
        .accounts
        .remove(&code)
        .map(Json)
        .ok_or_else(|| no_account(&code))
}

/// `POST /accounts`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    code: String,
    name: String,
    kind: AccountKind,
}

async fn create(
    State(app): State<Financial>,
    ctx: TenantContext,
    body: JsonBody<NewAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let Json(new) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if new.code.is_empty() || !new.code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::bad_request(
            "code: letters and digits only, not empty",
        ));
    }
    let company = ctx.require_company()?;
    let account = Account {
        code: new.code,
        name: new.name,
        kind: new.kind,
        balance: Cents::ZERO,
    };
    app.ledger
        .with(&ctx.tenant_id, company, |books| {
            if books.accounts.contains_key(&account.code) {
                return Err(ApiError::conflict(format!(
                    "account {} exists",
                    account.code
                )));
            }
            books.accounts.insert(account.code.clone(), account.clone());
            Ok((StatusCode::CREATED, Json(account)))
        })
        .await?
}

/// `PUT /accounts/{id}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename(
    State(app): State<Financial>,
    ctx: TenantContext,
    Path(code): Path<String>,
    body: JsonBody<Rename>,
) -> Result<Json<Account>, ApiError> {
    let Json(rename) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let company = ctx.require_company()?;
    app.ledger
        .with(&ctx.tenant_id, company, |books| {
            let account = books
                .accounts
                .get_mut(&code)
                .ok_or_else(|| no_account(&code))?;
            account.name = rename.name;
            Ok(Json(account.clone()))
        })
        .await?
}

async fn close(
    State(app): State<Financial>,
    ctx: TenantContext,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    let company = ctx.require_company()?;
    app.ledger
        .with(&ctx.tenant_id, company, |books| {
            let account = books.accounts.get(&code).ok_or_else(|| no_account(&code))?;
            if account.balance != Cents::ZERO {
                return Err(ApiError::conflict(format!(
                    "account {code} has a balance of {}: only an empty account can be closed",
                    account.balance.units()
                )));
            }
            books.accounts.remove(&code);
            Ok(StatusCode::NO_CONTENT)
        })
        .await?
}

async fn report(
    State(app): State<Financial>,
    ctx: TenantContext,
    Path(report): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if report != "summary" {
        return Err(ApiError::not_found(format!(
            "there is no report `{report}`; try `summary`"
        )));
    }
    let company = ctx.require_company()?;
    let config = app.settings(&ctx).await?;
    let invoices = app.ledger.invoices(&ctx.tenant_id, company).await?;
    let books = app.ledger.books(&ctx.tenant_id, company).await?;
    let sum = |f: fn(&crate::ledger::Invoice) -> Cents| {
        invoices.iter().map(f).fold(Cents::ZERO, |a, b| a + b)
    };
    let (invoiced, paid, tax) = (sum(|i| i.total), sum(|i| i.paid), sum(|i| i.tax));
    Ok(Json(json!({
        "currency": config.currency,
        "invoices": invoices.len(),
        "invoiced": invoiced, "paid": paid, "outstanding": invoiced - paid, "tax": tax,
        "accounts": books.accounts.values().collect::<Vec<_>>(),
    })))
}
