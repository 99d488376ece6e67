//! Example Plinth module `notifications`: when `financial` says an invoice was paid, tell the
//! customer. It sends nothing for real: it records what it would send, per tenant, in its
//! declared table `notifications_sent` (through the SDK's data handle, one item per event, so
//! a delivery made twice records it once), and lists that at `GET /api/v1/notifications/sent`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use plinth_module_sdk::auth::{ContextVerifier, require_permission};
use plinth_module_sdk::data::{Range, Tables};
use plinth_module_sdk::subscriber::{Delivery, Subscriptions};
use plinth_module_sdk::{ApiError, ConfigClient, Manifest, Module, TenantContext};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

/// What would have been sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The tenant it was sent for.
    pub tenant_id: String,
    /// The company whose invoice it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// `email` or `sms` (the tenant's `channel`).
    pub channel: String,
    /// Sent from (the tenant's `sender`).
    pub from: String,
    /// Sent to: the invoice's customer.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// The event that caused it, for deduplication and tracing.
    pub event_id: String,
    /// When, RFC 3339.
    pub sent_at: String,
}

/// `financial.invoice.paid`'s detail, as far as this module reads it.
#[derive(Debug, Deserialize)]
pub struct InvoicePaid {
    /// The invoice number.
    pub invoice_id: String,
    /// The customer billed.
    pub customer: String,
    /// Total paid.
    pub total: Value,
    /// Its currency.
    pub currency: String,
    /// The event's id.
    pub event_id: String,
}

/// The table of what was sent (partition the tenant, sort key the event's id).
pub const SENT_TABLE: &str = "notifications_sent";

/// Everything sent, per tenant.
#[derive(Debug, Clone)]
pub struct Outbox {
    tables: Tables,
}

impl Outbox {
    /// An outbox in `tables` (the module's declared tables).
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        Self { tables }
    }

    async fn record(&self, notification: &Notification) -> Result<(), ApiError> {
        let sent = self
            .tables
            .for_tenant(&notification.tenant_id, None)
            .table(SENT_TABLE)?;
        sent.put(&notification.event_id, notification).await?;
        Ok(())
    }

    /// What was sent for `tenant`, oldest first.
    ///
    /// # Errors
    /// What the data handle refuses or the backend fails with.
    pub async fn for_tenant(&self, tenant: &str) -> Result<Vec<Notification>, ApiError> {
        let sent = self.tables.for_tenant(tenant, None).table(SENT_TABLE)?;
        let mut all: Vec<Notification> = sent.query(Range::All).await?;
        all.sort_by(|a, b| a.sent_at.cmp(&b.sent_at));
        Ok(all)
    }
}

/// The module: `/sent` and the `invoice-paid` subscription, verified by `verifier`.
#[must_use]
pub fn module(outbox: Outbox, config: ConfigClient, verifier: ContextVerifier) -> Module {
    let api = Router::new()
        .route(
            "/sent",
            get(sent).route_layer(require_permission("notifications:sent.read")),
        )
        .with_state(outbox.clone());
    let subscriptions = Subscriptions::new(config).on("invoice-paid", move |delivery| {
        let outbox = outbox.clone();
        async move { invoice_paid(&outbox, &delivery).await }
    });
    Module::new(manifest(), verifier)
        .api(api)
        .subscriptions(subscriptions)
}

async fn invoice_paid(outbox: &Outbox, delivery: &Delivery<InvoicePaid>) -> Result<(), ApiError> {
    let setting = |key: &str, default: &str| {
        let value = delivery.config.get(key).and_then(Value::as_str);
        value.unwrap_or(default).to_owned()
    };
    let paid = &delivery.payload;
    let notification = Notification {
        tenant_id: delivery.tenant_id.clone(),
        company_id: delivery.company_id.clone(),
        channel: setting("channel", "email"),
        from: setting("sender", "billing@example.invalid"),
        to: paid.customer.clone(),
        subject: format!(
            "Invoice {} is paid: thank you ({} {})",
            paid.invoice_id, paid.total, paid.currency
        ),
        event_id: paid.event_id.clone(),
        sent_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
    };
    tracing::info!(tenant = %notification.tenant_id, to = %notification.to, "would send");
    outbox.record(&notification).await
}

async fn sent(
    State(outbox): State<Outbox>,
    ctx: TenantContext,
) -> Result<Json<Vec<Notification>>, ApiError> {
    Ok(Json(outbox.for_tenant(&ctx.tenant_id).await?))
}
