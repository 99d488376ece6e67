//! `plinth usage`: what tenants used of their modules, by hour or day, with bill estimates —
//! one tenant's (`--tenant`, its admin may ask) or every tenant's (a platform admin).

use std::io::{self, Write};

use serde_json::Value;

use super::Exit;
use super::client::{self, Client, Failure, Target, segment};
use super::table::{cell, table};

/// Arguments of `plinth usage`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// Only this tenant (else every tenant: a platform admin's token).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this module.
    #[arg(long)]
    pub module: Option<String>,
    /// Start: a date (2026-12-01) or an RFC 3339 time; default the first of this month.
    #[arg(long)]
    pub from: Option<String>,
    /// End: a date (included) or an RFC 3339 time (excluded); default now.
    #[arg(long)]
    pub to: Option<String>,
    /// `hour` or `day`.
    #[arg(long, default_value = "day")]
    pub granularity: String,
    /// Print the API's CSV export (a header line, one line per tenant, period and module).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    #[command(flatten)]
    pub target: Target,
}

/// The API path `args` ask for.
fn path(args: &UsageArgs) -> String {
    let mut path = match &args.tenant {
        Some(tenant) => format!("/api/v1/tenants/{}/usage", segment(tenant)),
        None => "/api/v1/usage".to_owned(),
    };
    path.push_str(&format!("?granularity={}", segment(&args.granularity)));
    for (name, value) in [
        ("module", &args.module),
        ("from", &args.from),
        ("to", &args.to),
    ] {
        if let Some(value) = value {
            path.push_str(&format!("&{name}={}", segment(value)));
        }
    }
    if args.csv {
        path.push_str("&format=csv");
    }
    path
}

pub(super) fn run(args: &UsageArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let path = path(args);
    if !args.csv {
        return client::show(&args.target, &path, out, err, human);
    }
    client::block_on(err, async {
        let answer = Client::new(&args.target)?.get(&path).await?;
        let text = answer.body.as_str().unwrap_or_default();
        write!(out, "{text}").map_err(|e| Failure::Usage(format!("cannot write output: {e}")))?;
        Ok(Exit::Success)
    })
}

/// A table of every tenant's rows, then each tenant's total and bill.
fn human(report: &Value) -> String {
    let tenants = report["tenants"].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for tenant in &tenants {
        for row in tenant["rows"].as_array().into_iter().flatten() {
            rows.push(figures(
                &tenant["tenant"],
                &row["period"],
                &row["module"],
                row,
            ));
        }
    }
    let headers = [
        "tenant",
        "period",
        "module",
        "requests",
        "4xx",
        "5xx",
        "bytes in",
        "bytes out",
        "events out",
        "events in",
        "p50 ms",
        "p95 ms",
        "p99 ms",
    ];
    let mut text = format!(
        "usage from {} to {} by {}\n\n{}\n",
        cell(&report["from"]),
        cell(&report["to"]),
        cell(&report["granularity"]),
        table(&headers, &rows)
    );
    let bills: Vec<Vec<String>> = tenants
        .iter()
        .map(|t| {
            let bill = &t["bill"];
            let money = |v: &Value| format!("{:.2}", v.as_f64().unwrap_or_default());
            vec![
                cell(&t["tenant"]),
                cell(&t["tier"]),
                cell(&t["total"]["requests"]),
                money(&bill["requests"]),
                money(&bill["transfer"]),
                money(&bill["events"]),
                format!("{} {}", money(&bill["total"]), cell(&bill["currency"])),
            ]
        })
        .collect();
    let bill_headers = [
        "tenant",
        "tier",
        "requests",
        "for requests",
        "for transfer",
        "for events",
        "estimate",
    ];
    text.push('\n');
    text.push_str(&table(&bill_headers, &bills));
    text
}

fn figures(tenant: &Value, period: &Value, module: &Value, f: &Value) -> Vec<String> {
    let mut row = vec![cell(tenant), cell(period), cell(module)];
    for name in [
        "requests",
        "errors_4xx",
        "errors_5xx",
        "request_bytes",
        "response_bytes",
        "events_published",
        "events_delivered",
    ] {
        row.push(cell(&f[name]));
    }
    for q in ["p50", "p95", "p99"] {
        row.push(cell(&f["latency_ms"][q]));
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        usage: UsageArgs,
    }

    #[test]
    fn flags_become_the_usage_route_and_its_query() {
        let line = Line::parse_from([
            "usage",
            "--tenant",
            "acme",
            "--module",
            "financial",
            "--from",
            "2026-12-01",
            "--csv",
            "--granularity",
            "hour",
        ]);
        assert_eq!(
            path(&line.usage),
            "/api/v1/tenants/acme/usage?granularity=hour&module=financial&from=2026-12-01&format=csv"
        );
        let every = Line::parse_from(["usage"]);
        assert_eq!(path(&every.usage), "/api/v1/usage?granularity=day");
    }

    #[test]
    fn the_table_shows_each_row_and_each_tenant_s_bill() {
        let report = serde_json::json!({
            "from": "2026-12-01T00:00:00Z", "to": "2026-12-08T00:00:00Z", "granularity": "day",
            "tenants": [{"tenant": "acme", "tier": "basic",
                "rows": [{"period": "2026-12-07T00:00:00Z", "module": "financial", "requests": 7,
                          "errors_4xx": 1, "errors_5xx": 2, "request_bytes": 10, "response_bytes": 20,
                          "events_published": 0, "events_delivered": 0,
                          "latency_ms": {"p50": 1.5, "p95": 2.0, "p99": 2.0}}],
                "total": {"requests": 7},
                "bill": {"currency": "USD", "requests": 0.000014, "transfer": 0.0, "events": 0.0, "total": 0.000014}}]
        });
        let text = human(&report);
        assert!(text.contains("financial") && text.contains("1.5"), "{text}");
        assert!(text.contains("0.00 USD"), "{text}");
    }
}
