//! `/invoices`: issue invoices with the company's configuration (currency, tax rate, number
//! prefix, payment terms), list and read them, and record payments. Issuing publishes
//! `financial.invoice.created`; the payment that settles an invoice publishes
//! `financial.invoice.paid`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use plinth_module_sdk::auth::require_permission;
use plinth_module_sdk::{ApiError, TenantContext};
use serde::Deserialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::Financial;
use crate::ledger::{Invoice, InvoiceStatus, RECEIVABLE, SALES, TAX_PAYABLE};
use crate::money::Cents;

/// The invoice routes, relative to the module's API prefix.
pub fn routes() -> Router<Financial> {
    Router::new()
        .route(
            "/invoices",
            get(list).route_layer(require_permission("financial:invoices.read")),
        )
        .route(
            "/invoices",
            post(create).route_layer(require_permission("financial:invoices.write")),
        )
        .route(
            "/invoices/{id}",
            get(read).route_layer(require_permission("financial:invoices.read")),
        )
        .route(
            "/invoices/{id}/payments",
            post(pay).route_layer(require_permission("financial:payments.write")),
        )
}

/// `POST /invoices`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvoice {
    customer: String,
    amount: Cents,
    #[serde(default)]
    description: String,
}

async fn list(
    State(app): State<Financial>,
    ctx: TenantContext,
) -> Result<Json<Vec<Invoice>>, ApiError> {
    let company = ctx.require_company()?;
    let invoices = app.ledger.invoices(&ctx.tenant_id, company).await?;
    Ok(Json(invoices))
}

async fn read(
    State(app): State<Financial>,
    ctx: TenantContext,
    Path(number): Path<String>,
) -> Result<Json<Invoice>, ApiError> {
    let company = ctx.require_company()?;
    let found = app.ledger.invoice(&ctx.tenant_id, company, &number).await?;
    found.map(Json).ok_or_else(|| no_invoice(&number))
}

fn no_invoice(number: &str) -> ApiError {
    ApiError::not_found(format!("there is no invoice {number}"))
}

async fn create(
    State(app): State<Financial>,
    ctx: TenantContext,
    body: Result<Json<NewInvoice>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Invoice>), ApiError> {
    let Json(new) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if new.customer.trim().is_empty() {
        return Err(ApiError::bad_request("customer: must not be empty"));
    }
    if new.amount <= Cents::ZERO {
        return Err(ApiError::bad_request("amount: must be more than 0"));
    }
    let company = ctx.require_company()?.to_owned();
    let config = app.settings(&ctx).await?;
    let today = OffsetDateTime::now_utc().date();
    let due = today + Duration::days(i64::from(config.payment_terms_days));
    let tax = new.amount.percent(config.tax_rate * 100.0);
    let invoice = app
        .ledger
        .issue(
            &ctx.tenant_id,
            &company,
            &config.invoice_prefix,
            |number, books| {
                let invoice = Invoice {
                    number,
                    customer: new.customer.trim().to_owned(),
                    description: new.description.clone(),
                    currency: config.currency.clone(),
                    subtotal: new.amount,
                    tax_rate: config.tax_rate,
                    tax,
                    total: new.amount + tax,
                    paid: Cents::ZERO,
                    status: InvoiceStatus::Open,
                    issued_on: today.to_string(),
                    due_on: due.to_string(),
                };
                books.post(RECEIVABLE, invoice.total);
                books.post(SALES, invoice.subtotal);
                books.post(TAX_PAYABLE, invoice.tax);
                invoice
            },
        )
        .await?;
    let payload = json!({
        "invoice_id": invoice.number, "customer": invoice.customer,
        "total": invoice.total, "currency": invoice.currency, "due_on": invoice.due_on,
    });
    app.events
        .publish(&ctx, "financial.invoice.created", &payload)
        .await?;
    Ok((StatusCode::CREATED, Json(invoice)))
}

/// `POST /invoices/{id}/payments`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPayment {
    amount: Cents,
}

async fn pay(
    State(app): State<Financial>,
    ctx: TenantContext,
    Path(number): Path<String>,
    body: Result<Json<NewPayment>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Invoice>, ApiError> {
    let Json(payment) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if payment.amount <= Cents::ZERO {
        return Err(ApiError::bad_request("amount: must be more than 0"));
    }
    let company = ctx.require_company()?;
    let invoice = app
        .ledger
        .with_invoice(&ctx.tenant_id, company, &number, |invoice, books| {
            let outstanding = invoice.total - invoice.paid;
            if invoice.status == InvoiceStatus::Paid {
                return Err(ApiError::conflict(format!(
                    "invoice {number} is paid already"
                )));
            }
            if payment.amount > outstanding {
                return Err(ApiError::bad_request(format!(
                    "amount: {} is more than the {} {} outstanding on {number}",
                    payment.amount.units(),
                    outstanding.units(),
                    invoice.currency
                )));
            }
            invoice.paid = invoice.paid + payment.amount;
            if invoice.paid == invoice.total {
                invoice.status = InvoiceStatus::Paid;
            }
            books.post(crate::ledger::CASH, payment.amount);
            books.post(RECEIVABLE, -payment.amount);
            Ok(invoice.clone())
        })
        .await?
        .ok_or_else(|| no_invoice(&number))?;
    if invoice.status == InvoiceStatus::Paid {
        let payload = json!({
            "invoice_id": invoice.number, "customer": invoice.customer,
            "total": invoice.total, "currency": invoice.currency,
        });
        app.events
            .publish(&ctx, "financial.invoice.paid", &payload)
            .await?;
    }
    Ok(Json(invoice))
}
