//! Configuration resolution on the embedded store: p50/p99 and throughput, cold (cache
//! dropped before each call: one batch get) and warm, with 100 and with 10,000 tenants, each
//! with 20 modules enabled and 10 companies overriding every module.
//!
//! `cargo bench --bench config` — results and the machine are in BENCHMARKS.md.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_module_sdk::ModuleName;
use plinth_registry::events::local::LocalBus;
use plinth_registry::identity::ContextSigner;
use plinth_registry::identity::{Caller, PlatformRole, TokenVerifier, User};
use plinth_registry::ids::{CompanyId, TenantId, UserId};
use plinth_registry::queue::LocalQueue;
use plinth_registry::store::embedded::EmbeddedStore;
use plinth_registry::store::{Item, keys};
use plinth_registry::{App, Identity, Ports, Settings};
use serde_json::{Map, Value, json};

const MODULES: usize = 20;
const COMPANIES: usize = 10;
const SAMPLES: usize = 20_000;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn manifest(m: usize) -> Value {
    json!({
        "name": format!("mod{m:02}"), "display_name": "M", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": format!("/api/v1/mod{m:02}")},
        "configuration": {
            "defaults": {"currency": "USD", "tax_rate": 0, "invoice_prefix": "INV", "payment_terms_days": 30},
            "schema": {"type": "object", "properties": {"currency": {"type": "string"}, "tax_rate": {"type": "number"}}}
        },
        "features": [{"name": "invoicing", "default": true}, {"name": "reporting", "default": false}]
    })
}

/// Seeds `tenants` × 20 modules × 10 companies, in bulk transactions.
async fn seed(store: &EmbeddedStore, tenants: usize) {
    let mut batch = Vec::new();
    for m in 0..MODULES {
        let name = format!("mod{m:02}");
        let installation = json!({"module": name, "operation": "install", "status": "installed", "version": "1.0.0",
            "installed_version": "1.0.0", "steps": [], "manifest": manifest(m), "updated_at": "2026-11-28T00:00:00Z"});
        batch.push(Item::new(keys::installation(&name), object(installation)));
    }
    for t in 0..tenants {
        let tenant = format!("t{t:05}");
        for m in 0..MODULES {
            let module = format!("mod{m:02}");
            let row = json!({"tenant_id": tenant, "module": module, "enabled": true,
                "configuration": {"currency": "EUR", "tax_rate": 0.2, "invoice_prefix": "ACME"},
                "enabled_features": ["reporting"], "disabled_features": [], "updated_at": "x", "updated_by": "seed"});
            batch.push(Item::new(
                keys::tenant_module(&tenant, &module),
                object(row),
            ));
            for c in 0..COMPANIES {
                let company = format!("c{c}");
                let row = json!({"tenant_id": tenant, "company_id": company, "module": module, "is_enabled": true,
                    "configuration": {"tax_rate": 0.19, "invoice_prefix": "ACME-DE"}, "enabled_features": [],
                    "disabled_features": [], "customized_at": "x", "customized_by_user_id": "seed"});
                batch.push(Item::new(
                    keys::company_module(&tenant, &company, &module),
                    object(row),
                ));
            }
        }
        for c in 0..COMPANIES {
            let company =
                json!({"id": format!("c{c}"), "tenant_id": tenant, "name": "C", "created_at": "x"});
            batch.push(Item::new(
                keys::company(&tenant, &format!("c{c}")),
                object(company),
            ));
        }
        if batch.len() >= 50_000 {
            store.import(std::mem::take(&mut batch)).await.unwrap();
        }
    }
    store.import(batch).await.unwrap();
}

fn platform(store: EmbeddedStore) -> App {
    let (queue, _worker) = tokio::sync::mpsc::unbounded_channel();
    let ports = Ports::new(
        Arc::new(store),
        Arc::new(LocalBus::default()),
        Arc::new(LocalQueue(queue)),
    );
    let identity = Identity {
        tokens: TokenVerifier::hs256(&[7u8; 32], None, None).unwrap(),
        context: Arc::new(ContextSigner::generate().unwrap()),
    };
    App::build(ports, identity, Settings::default())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn measure(platform: &App, tenants: usize, cold: bool) -> (Duration, Duration, f64) {
    let admin = Caller::User(User {
        id: UserId::parse("bench").unwrap(),
        tenant: None,
        company: None,
        companies: Default::default(),
        roles: BTreeSet::from([PlatformRole::PlatformAdmin]),
    });
    let requests: Vec<(TenantId, ModuleName, CompanyId)> = (0..SAMPLES)
        .map(|i| {
            let t = (i * 7919) % tenants;
            (
                TenantId::parse(&format!("t{t:05}")).unwrap(),
                ModuleName::parse(&format!("mod{:02}", (i * 31) % MODULES)).unwrap(),
                CompanyId::parse(&format!("c{}", i % COMPANIES)).unwrap(),
            )
        })
        .collect();
    let mut times = Vec::with_capacity(SAMPLES);
    let started = Instant::now();
    for (tenant, module, company) in &requests {
        if cold {
            platform.plane.config.forget();
        }
        let at = Instant::now();
        let resolved = platform
            .plane
            .config
            .resolve_config(&admin, tenant, module, Some(company))
            .await
            .unwrap();
        times.push(at.elapsed());
        assert_eq!(resolved.configuration["invoice_prefix"], "ACME-DE");
    }
    let total = started.elapsed();
    times.sort();
    (
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        SAMPLES as f64 / total.as_secs_f64(),
    )
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        println!("| tenants | rows | mode | p50 | p99 | resolutions/s |");
        println!("| ---: | ---: | --- | ---: | ---: | ---: |");
        for tenants in [100, 10_000] {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(dir.path().join("bench.redb")).unwrap();
            let seeding = Instant::now();
            seed(&store, tenants).await;
            let rows = tenants * MODULES * (COMPANIES + 1) + tenants * COMPANIES + MODULES;
            eprintln!(
                "seeded {rows} rows in {:.1} s",
                seeding.elapsed().as_secs_f64()
            );
            let platform = platform(store);
            measure(&platform, tenants, true).await; // warm the OS file cache
            for cold in [true, false] {
                if !cold {
                    measure(&platform, tenants, false).await; // fill the resolution cache
                }
                let (p50, p99, rate) = measure(&platform, tenants, cold).await;
                let mode = if cold {
                    "uncached (1 batch get)"
                } else {
                    "cached"
                };
                println!(
                    "| {tenants} | {rows} | {mode} | {:.1} µs | {:.1} µs | {rate:.0} |",
                    p50.as_secs_f64() * 1e6,
                    p99.as_secs_f64() * 1e6
                );
            }
        }
    });
}
