//! `plinth events …`: work with events and event patterns.

use std::io::{self, Write};

use plinth_module_sdk::events::pattern::Pattern;
use serde_json::Value;

use super::Exit;

/// Arguments of `plinth events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EventsCommand,
}

/// The `events` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Test an EventBridge event pattern against an event, like EventBridge's TestEventPattern.
    ///
    /// Prints `true` or `false` and exits 0. Exits 2, saying why, when the pattern is not
    /// valid (EventBridge's reason) or an input cannot be read or is not JSON.
    TestPattern {
        /// The pattern: JSON text, or `@FILE` to read it from a file.
        pattern: String,
        /// The event: JSON text, or `@FILE` to read it from a file.
        event: String,
    },
}

pub(super) fn run(args: EventsArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    match args.command {
        EventsCommand::TestPattern { pattern, event } => test_pattern(&pattern, &event, out, err),
    }
}

fn test_pattern(
    pattern: &str,
    event: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    let inputs = read_json("pattern", pattern).and_then(|p| Ok((p, read_json("event", event)?)));
    let (pattern, event) = match inputs {
        Ok(inputs) => inputs,
        Err(message) => {
            writeln!(err, "error: {message}")?;
            return Ok(Exit::Failure);
        }
    };
    if !event.is_object() {
        writeln!(err, "error: the event must be a JSON object")?;
        return Ok(Exit::Failure);
    }
    match Pattern::parse(&pattern) {
        Ok(pattern) => {
            writeln!(out, "{}", pattern.matches(&event))?;
            Ok(Exit::Success)
        }
        Err(error) => {
            writeln!(err, "error: {error}")?;
            Ok(Exit::Failure)
        }
    }
}

/// The JSON of an argument: its text, or the content of the file after `@`.
fn read_json(what: &str, argument: &str) -> Result<Value, String> {
    let (text, source) = match argument.strip_prefix('@') {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|error| format!("cannot read the {what} from {file}: {error}"))?;
            (text, format!(" in {file}"))
        }
        None => (argument.to_owned(), String::new()),
    };
    serde_json::from_str(&text).map_err(|error| format!("the {what}{source} is not JSON: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(pattern: &str, event: &str) -> (Exit, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let exit = test_pattern(pattern, event, &mut out, &mut err).expect("output written");
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
        (exit, text(out), text(err))
    }

    #[test]
    fn a_matching_event_prints_true() {
        let pattern = r#"{"detail-type": ["tenant.module.enabled"], "detail": {"module": [{"prefix": "fin"}]}}"#;
        let event =
            r#"{"detail-type": "tenant.module.enabled", "detail": {"module": "financial"}}"#;
        assert_eq!(
            test(pattern, event),
            (Exit::Success, "true\n".into(), String::new())
        );
        let other = r#"{"detail-type": "tenant.module.enabled", "detail": {"module": "hr"}}"#;
        assert_eq!(
            test(pattern, other),
            (Exit::Success, "false\n".into(), String::new())
        );
    }

    #[test]
    fn an_invalid_pattern_exits_2_with_eventbridges_reason() {
        let (exit, out, err) = test(r#"{"source": "plinth.registry"}"#, "{}");
        assert_eq!((exit, out.as_str()), (Exit::Failure, ""));
        assert_eq!(
            err,
            "error: Event pattern is not valid. Reason: \"source\" must be an object or an array (at `source`)\n"
        );
    }

    #[test]
    fn inputs_come_from_files_after_an_at_sign() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let pattern = dir.path().join("pattern.json");
        std::fs::write(&pattern, r#"{"source": ["plinth.registry"]}"#).expect("written");
        let at_file = format!("@{}", pattern.display());
        let (exit, out, _) = test(&at_file, r#"{"source": "plinth.registry"}"#);
        assert_eq!((exit, out.as_str()), (Exit::Success, "true\n"));
        let missing = format!("@{}", dir.path().join("none.json").display());
        let (exit, _, err) = test(&at_file, &missing);
        assert_eq!(exit, Exit::Failure);
        assert!(
            err.starts_with("error: cannot read the event from "),
            "{err}"
        );
    }

    #[test]
    fn text_that_is_not_json_or_an_event_that_is_not_an_object_exits_2() {
        let (exit, _, err) = test("{", "{}");
        assert_eq!(exit, Exit::Failure);
        assert!(
            err.starts_with("error: the pattern is not JSON: EOF"),
            "{err}"
        );
        let (exit, _, err) = test(r#"{"a": [1]}"#, "[1]");
        assert_eq!(
            (exit, err.as_str()),
            (Exit::Failure, "error: the event must be a JSON object\n")
        );
    }
}
