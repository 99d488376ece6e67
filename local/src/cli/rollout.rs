//! `plinth module rollout | rollouts | rollout-pause | rollout-resume | rollout-abort`:
//! staged rollouts of a module's tenants to another installed version (`registry::rollout`;
//! operations.md, "Rollouts"). `rollout` follows its rollout with a progress bar per wave and
//! exits 1 when it is rolled back or aborted.

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::Exit;
use super::client::{self, Client, Failure, Output, segment};
use super::module::text_of;

/// How often a followed rollout is read.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// The rollout subcommands of `plinth module`.
#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// Move the module's tenants to an installed version wave by wave, watching its 5xx share,
    /// p95 latency and instances between waves; a breach moves them back. Follows the rollout
    /// with a progress bar per wave.
    ///
    /// Exit status: 0 completed (or paused), 1 refused, rolled back or aborted, 2 Plinth
    /// unreachable.
    Rollout {
        name: String,
        /// An installed version (install it with `plinth module install --alongside`).
        version: String,
        /// Named tenants first, then rising shares of the module's enabled tenants:
        /// `canary:acme,10%,50%,100%`.
        #[arg(long)]
        waves: String,
        /// The largest share of requests answering 5xx (default 0.05).
        #[arg(long, value_name = "SHARE")]
        max_error_rate: Option<f64>,
        /// The largest p95 latency through the gateway, in ms (default 1000).
        #[arg(long, value_name = "MS")]
        max_p95_ms: Option<u64>,
        /// Requests a wave must see before its error rate and latency are judged (default 10).
        #[arg(long, value_name = "N")]
        min_requests: Option<u64>,
        /// How long each wave is watched: `30s`, `5m`, `1h` (default 60s).
        #[arg(long, value_name = "TIME", value_parser = bake_seconds)]
        bake: Option<u64>,
        /// Start it and return, without following.
        #[arg(long)]
        detach: bool,
    },
    /// The module's rollouts and where each is.
    Rollouts { name: String },
    /// Hold the module's running rollout: tenants stay where they are.
    RolloutPause {
        name: String,
        /// The rollout (default: the module's active one).
        id: Option<String>,
    },
    /// Resume the module's paused rollout; its current wave bakes again.
    RolloutResume {
        name: String,
        /// The rollout (default: the module's active one).
        id: Option<String>,
    },
    /// Stop the module's rollout and move its tenants back.
    RolloutAbort {
        name: String,
        /// The rollout (default: the module's active one).
        id: Option<String>,
    },
}

/// `30s`, `5m`, `1h` or plain seconds.
fn bake_seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a time such as 30s, 5m or 1h"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("`{text}` is not a time such as 30s, 5m or 1h")),
    };
    Ok(number * scale)
}

pub(super) async fn run(
    client: &Client,
    output: Output,
    command: RolloutCommand,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    match command {
        RolloutCommand::Rollout {
            name,
            version,
            waves,
            max_error_rate,
            max_p95_ms,
            min_requests,
            bake,
            detach,
        } => {
            let mut thresholds = serde_json::Map::new();
            for (key, value) in [
                ("max_error_rate", max_error_rate.map(|v| json!(v))),
                ("max_p95_ms", max_p95_ms.map(|v| json!(v))),
                ("min_requests", min_requests.map(|v| json!(v))),
            ] {
                if let Some(value) = value {
                    thresholds.insert(key.to_owned(), value);
                }
            }
            let mut body = json!({"version": version, "waves": waves});
            if !thresholds.is_empty() {
                body["thresholds"] = Value::Object(thresholds);
            }
            if let Some(bake) = bake {
                body["bake_seconds"] = json!(bake);
            }
            let path = format!("/api/v1/modules/{}/rollouts", segment(&name));
            let started = client.post(&path, &body).await?.body;
            if detach || output == Output::Json {
                client::print(out, output, &started, |r| {
                    format!(
                        "rollout {} of {name} to {version} started; follow it with `plinth module rollouts {name}`",
                        text_of(&r["id"])
                    )
                })?;
                return Ok(Exit::Success);
            }
            writeln!(
                out,
                "rollout {} of {name} {} → {version}: waves {waves}",
                text_of(&started["id"]),
                text_of(&started["from_version"])
            )
            .map_err(|e| write_failed(&e))?;
            follow(client, &name, &text_of(&started["id"]), out).await
        }
        RolloutCommand::Rollouts { name } => {
            let path = format!("/api/v1/modules/{}/rollouts", segment(&name));
            let listed = client.get(&path).await?.body;
            client::print(out, output, &listed, rollouts_text)?;
            Ok(Exit::Success)
        }
        RolloutCommand::RolloutPause { name, id } => {
            act(client, output, &name, id, "pause", out).await
        }
        RolloutCommand::RolloutResume { name, id } => {
            act(client, output, &name, id, "resume", out).await
        }
        RolloutCommand::RolloutAbort { name, id } => {
            act(client, output, &name, id, "abort", out).await
        }
    }
}

/// Pauses, resumes or aborts rollout `id` of `name` (else its active one).
async fn act(
    client: &Client,
    output: Output,
    name: &str,
    id: Option<String>,
    action: &str,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let id = match id {
        Some(id) => id,
        None => active(client, name).await?,
    };
    let path = format!(
        "/api/v1/modules/{}/rollouts/{}/{action}",
        segment(name),
        segment(&id)
    );
    let answer = client.post(&path, &json!({})).await?.body;
    client::print(out, output, &answer, rollout_line)?;
    Ok(Exit::Success)
}

/// The id of `name`'s running or paused rollout.
async fn active(client: &Client, name: &str) -> Result<String, Failure> {
    let path = format!("/api/v1/modules/{}/rollouts", segment(name));
    let listed = client.get(&path).await?.body;
    listed
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|r| {
            !matches!(
                text_of(&r["state"]).as_str(),
                "completed" | "rolled_back" | "aborted"
            )
        })
        .map(|r| text_of(&r["id"]))
        .ok_or_else(|| Failure::Failed(format!("{name} has no running or paused rollout")))
}

/// Follows rollout `id` with a bar per wave until it ends (or is paused).
async fn follow(
    client: &Client,
    name: &str,
    id: &str,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let path = format!("/api/v1/modules/{}/rollouts/{}", segment(name), segment(id));
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos:>4}/{len}s {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut shown: Vec<(ProgressBar, String)> = Vec::new();
    loop {
        let rollout = client.get(&path).await?.body;
        let waves = rollout["waves"].as_array().cloned().unwrap_or_default();
        let bake = rollout["bake_seconds"].as_u64().unwrap_or(0);
        for (at, wave) in waves.iter().enumerate() {
            let state = text_of(&wave["state"]);
            if state == "pending" {
                continue;
            }
            if shown.len() <= at {
                let bar = bars.add(ProgressBar::new(bake));
                bar.set_style(style.clone());
                bar.set_prefix(format!("wave {} {}", at + 1, text_of(&wave["label"])));
                shown.push((bar, String::new()));
            }
            let (bar, last) = &mut shown[at];
            bar.set_message(figures_text(wave));
            if state == "baking" {
                bar.set_position(bake.saturating_sub(seconds_left(&rollout)));
            }
            if state != *last {
                let tell = matches!(state.as_str(), "baking" | "stopped")
                    || (state == "done" && last.is_empty());
                if tell {
                    let line = format!(
                        "  wave {} ({}) {state}: {}",
                        at + 1,
                        text_of(&wave["label"]),
                        tenants_text(wave)
                    );
                    bars.suspend(|| writeln!(out, "{line}"))
                        .map_err(|e| write_failed(&e))?;
                }
                if state == "done" {
                    bar.set_position(bake);
                    bar.finish();
                } else if state == "stopped" {
                    bar.abandon();
                }
                *last = state;
            }
        }
        let state = text_of(&rollout["state"]);
        match state.as_str() {
            "completed" => {
                writeln!(out, "{}", rollout_line(&rollout)).map_err(|e| write_failed(&e))?;
                return Ok(Exit::Success);
            }
            "paused" => {
                writeln!(
                    out,
                    "{}; resume it with `plinth module rollout-resume {name}`",
                    rollout_line(&rollout)
                )
                .map_err(|e| write_failed(&e))?;
                return Ok(Exit::Success);
            }
            "rolled_back" | "aborted" => {
                return Err(Failure::Failed(rollout_line(&rollout)));
            }
            _ => {}
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Seconds left of the current wave's bake.
fn seconds_left(rollout: &Value) -> u64 {
    let Some(ends) = rollout["bake_ends_at"].as_str() else {
        return 0;
    };
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(ends, &format)
        .map(|ends| {
            (ends - time::OffsetDateTime::now_utc())
                .whole_seconds()
                .max(0) as u64
        })
        .unwrap_or(0)
}

fn write_failed(e: &std::io::Error) -> Failure {
    Failure::Usage(format!("cannot write output: {e}"))
}

fn tenants_text(wave: &Value) -> String {
    let tenants: Vec<String> = wave["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text_of)
        .collect();
    if tenants.is_empty() {
        "no tenant moved".to_owned()
    } else {
        tenants.join(", ")
    }
}

/// `120 req, 0.8% 5xx, p95 14 ms`.
fn figures_text(wave: &Value) -> String {
    let figures = &wave["figures"];
    let p95 = figures["p95_ms"]
        .as_f64()
        .map_or_else(|| "-".to_owned(), |p| format!("{p:.0} ms"));
    format!(
        "{} req, {:.1}% 5xx, p95 {p95}",
        figures["requests"].as_u64().unwrap_or(0),
        figures["error_rate"].as_f64().unwrap_or(0.0) * 100.0
    )
}

/// `rollout 0193… of financial to 1.3.0: rolled_back (wave 1 of 4, 1 tenant moved): reason`.
fn rollout_line(rollout: &Value) -> String {
    let waves = rollout["waves"].as_array().map_or(0, Vec::len);
    let mut line = format!(
        "rollout {} of {} to {}: {} (wave {} of {waves}, {} tenant(s) on {})",
        text_of(&rollout["id"]),
        text_of(&rollout["module"]),
        text_of(&rollout["version"]),
        text_of(&rollout["state"]),
        text_of(&rollout["current_wave"]),
        text_of(&rollout["tenants_moved"]),
        text_of(&rollout["version"]),
    );
    if let Some(reason) = rollout["reason"].as_str() {
        line.push_str(&format!(": {reason}"));
    }
    line
}

fn rollouts_text(listed: &Value) -> String {
    let mut text =
        "ID                                    VERSION  STATE        WAVE  MOVED  REASON"
            .to_owned();
    for rollout in listed.as_array().into_iter().flatten() {
        let waves = rollout["waves"].as_array().map_or(0, Vec::len);
        text.push_str(&format!(
            "\n{:<37} {:<8} {:<12} {:<5} {:<6} {}",
            text_of(&rollout["id"]),
            text_of(&rollout["version"]),
            text_of(&rollout["state"]),
            format!("{}/{waves}", text_of(&rollout["current_wave"])),
            text_of(&rollout["tenants_moved"]),
            rollout["reason"].as_str().unwrap_or("-"),
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bake_times_read_seconds_minutes_and_hours() {
        assert_eq!(bake_seconds("30s"), Ok(30));
        assert_eq!(bake_seconds("5m"), Ok(300));
        assert_eq!(bake_seconds("1h"), Ok(3600));
        assert_eq!(bake_seconds("45"), Ok(45));
        assert!(bake_seconds("soon").unwrap_err().contains("30s, 5m or 1h"));
    }

    #[test]
    fn a_rolled_back_rollout_s_line_says_why() {
        let rollout = json!({"id": "r1", "module": "financial", "version": "1.3.0",
            "state": "rolled_back", "current_wave": 1, "tenants_moved": 0,
            "waves": [{}, {}], "reason": "error rate 100.0% is above the 5.0% allowed"});
        assert_eq!(
            rollout_line(&rollout),
            "rollout r1 of financial to 1.3.0: rolled_back (wave 1 of 2, 0 tenant(s) on 1.3.0): \
             error rate 100.0% is above the 5.0% allowed"
        );
        let wave = json!({"figures": {"requests": 20, "error_rate": 0.25, "p95_ms": 14.2}});
        assert_eq!(figures_text(&wave), "20 req, 25.0% 5xx, p95 14 ms");
    }
}
