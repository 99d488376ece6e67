//! Example Plinth module `financial`: accounts and invoices per tenant and company.
//!
//! A `lambda` backend in its manifest; the same router runs as a local HTTP server under
//! `plinth up` (see `main.rs`). Invoices use the company's resolved configuration (currency,
//! tax rate, number prefix, payment terms); enabling the module for a company, or creating a
//! company in a tenant that has it, opens the default accounts.

pub mod accounts;
pub mod invoices;
pub mod ledger;
pub mod money;

use async_trait::async_trait;
use plinth_module_sdk::auth::ContextVerifier;
use plinth_module_sdk::hooks::{HookAnswer, HookCall, HookResult, Hooks};
use plinth_module_sdk::publisher::Publisher;
use plinth_module_sdk::subscriber::{Delivery, Subscriptions};
use plinth_module_sdk::{ApiError, ConfigClient, Manifest, Module, TenantContext};
use serde::Deserialize;
use serde_json::Value;

use ledger::{InvoiceStatus, Ledger};

/// The module's manifest, as published to the platform.
pub const MANIFEST: &str = include_str!("../manifest.json");

/// The parsed manifest.
///
/// # Panics
/// Never for the manifest shipped here (a test holds it valid).
#[must_use]
pub fn manifest() -> Manifest {
    Manifest::from_json_str(MANIFEST).expect("manifest.json is a valid manifest")
}

/// The module's configuration (its manifest's `configuration.schema`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Settings {
    /// ISO 4217 currency of invoices.
    pub currency: String,
    /// Tax rate, a fraction of the subtotal as in the seed (0.19 = 19 %).
    pub tax_rate: f64,
    /// Invoice numbers are `{invoice_prefix}-{n}`.
    pub invoice_prefix: String,
    /// Days from issue to due date.
    pub payment_terms_days: u32,
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Financial {
    /// Every company's books.
    pub ledger: Ledger,
    /// The platform's resolved configuration, cached.
    pub config: ConfigClient,
    /// This module's events.
    pub events: Publisher,
}

impl Financial {
    /// The settings of the context's tenant and company.
    ///
    /// # Errors
    /// `404` when the tenant does not have the module; `502` when the platform cannot
    /// answer or the configuration does not fit [`Settings`].
    pub async fn settings(&self, ctx: &TenantContext) -> Result<Settings, ApiError> {
        let resolved = self.config.for_context(ctx).await?;
        resolved
            .parse()
            .map_err(|e| ApiError::bad_gateway(format!("the configuration does not fit: {e}")))
    }
}

/// The module: API, hooks and subscriptions around `app`, verified by `verifier`.
#[must_use]
pub fn module(app: Financial, verifier: ContextVerifier) -> Module {
    let ledger = app.ledger.clone();
    let subscriptions = Subscriptions::new(app.config.clone()).on(
        "company-created",
        move |delivery: Delivery<Value>| {
            let ledger = ledger.clone();
            async move {
                if let Some(company) = &delivery.company_id {
                    ledger
                        .with(&delivery.tenant_id, company, |b| b.open_default_accounts())
                        .await?;
                }
                Ok(())
            }
        },
    );
    let api = failing(
        accounts::routes()
            .merge(invoices::routes())
            .with_state(app.clone()),
    );
    Module::new(manifest(), verifier)
        .api(api)
        .hooks(FinancialHooks { ledger: app.ledger })
        .subscriptions(subscriptions)
}

/// `FINANCIAL_TEST_FAIL_STATUS` (the platform's rollout tests only, through a manifest's
/// `backend.env`): every API route answers that status — a bad version — while the health
/// check still passes.
fn failing(api: axum::Router) -> axum::Router {
    let status = std::env::var("FINANCIAL_TEST_FAIL_STATUS")
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok());
    match status {
        Some(status) => api.layer(axum::middleware::from_fn(
            move |_: axum::extract::Request, _: axum::middleware::Next| async move {
                axum::response::IntoResponse::into_response(status)
            },
        )),
        None => api,
    }
}

/// The lifecycle hooks the manifest declares.
#[derive(Debug, Clone)]
pub struct FinancialHooks {
    ledger: Ledger,
}

#[async_trait]
impl Hooks for FinancialHooks {
    async fn post_enable_company(&self, call: &HookCall) -> HookResult {
        let (Some(tenant), Some(company)) = (&call.tenant_id, &call.company_id) else {
            return Err(ApiError::bad_request(
                "post_enable_company names a tenant and company",
            ));
        };
        let opened = self
            .ledger
            .with(tenant, company, |b| b.open_default_accounts())
            .await?;
        tracing::info!(%tenant, %company, opened, "default accounts opened");
        Ok(HookAnswer::Proceed)
    }

    async fn pre_disable_company(&self, call: &HookCall) -> HookResult {
        let (Some(tenant), Some(company)) = (&call.tenant_id, &call.company_id) else {
            return Ok(HookAnswer::Proceed);
        };
        let open = self
            .ledger
            .invoices(tenant, company)
            .await?
            .iter()
            .filter(|i| i.status == InvoiceStatus::Open)
            .count();
        if open == 0 {
            Ok(HookAnswer::Proceed)
        } else {
            Ok(HookAnswer::Refuse(format!(
                "{company} has {open} open invoice(s): settle them before disabling financial"
            )))
        }
    }
}
