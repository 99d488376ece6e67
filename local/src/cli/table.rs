//! How read commands print for people: a list as an aligned table, one record as aligned
//! `field: value` lines. `--json` prints the API's answer instead (`client::print`).

use serde_json::Value;

/// An aligned table with a header row; `(none)` when there are no rows.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "(none)".to_owned();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut lines = vec![line(headers.iter().map(|h| h.to_uppercase()).collect())];
    lines.extend(rows.iter().map(|row| line(row.clone())));
    lines.join("\n")
}

/// `field: value` lines, the values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| format!("{:<width$} {value}", format!("{key}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A JSON value as a cell: text unquoted, a list joined by commas, nothing as `-`.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) if text.is_empty() => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(map) if map.is_empty() => "-".to_owned(),
        other => other.to_string(),
    }
}

/// The rows of a JSON array answer (none when it is not one).
pub fn rows<'a>(answer: &'a Value, row: impl Fn(&'a Value) -> Vec<String>) -> Vec<Vec<String>> {
    answer.as_array().into_iter().flatten().map(row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_aligns_its_columns_under_upper_case_headers() {
        let rows = vec![
            vec!["acme".into(), "Acme Corp".into()],
            vec!["b".into(), "-".into()],
        ];
        assert_eq!(
            table(&["id", "name"], &rows),
            "ID    NAME\nacme  Acme Corp\nb     -"
        );
        assert_eq!(table(&["id"], &[]), "(none)");
    }

    #[test]
    fn cells_read_as_text() {
        assert_eq!(cell(&json!("EUR")), "EUR");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(
            fields(&[("id", "acme".into()), ("tier", "premium".into())]),
            "id:   acme\ntier: premium"
        );
    }
}
