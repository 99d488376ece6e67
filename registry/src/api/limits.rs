//! How large a stored field may be. The store takes items of at most
//! [`MAX_ITEM_BYTES`](crate::store::MAX_ITEM_BYTES) (DynamoDB's 400 KB); a record also keeps
//! its neighbours and the change's audit record a copy, so the fields a caller fills freely
//! are held well below it and refused naming the field (422). Whatever still passes is the
//! store's 413 (`Error::TooLarge`), which names the record's largest field.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// A tenant's or company's configuration of a module, as JSON.
pub const MAX_CONFIGURATION_BYTES: usize = 64 * 1024;
/// A module's manifest, as JSON.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;

/// `value` as JSON is at most `max` bytes, else a 422 naming `field`.
pub(super) fn within<T: Serialize>(field: &str, value: &T, max: usize) -> Result<()> {
    let size = json_len(value);
    if size <= max {
        return Ok(());
    }
    Err(Error::field(
        field,
        format!("is {size} bytes as JSON, more than the {max} bytes it may hold"),
    ))
}

/// A manifest of at most [`MAX_MANIFEST_BYTES`], else a 422 naming its largest field.
pub(super) fn manifest_within(document: &Value) -> Result<()> {
    let size = json_len(document);
    if size <= MAX_MANIFEST_BYTES {
        return Ok(());
    }
    let largest = document
        .as_object()
        .and_then(|fields| fields.iter().max_by_key(|(_, v)| json_len(v)))
        .map(|(name, value)| (name.clone(), json_len(value)));
    let (field, message) = match largest {
        Some((name, bytes)) => (
            name,
            format!(
                "is {bytes} bytes as JSON, and makes the manifest {size} bytes, more than the \
                 {MAX_MANIFEST_BYTES} bytes a manifest may hold"
            ),
        ),
        None => (
            String::new(),
            format!("the manifest is {size} bytes, more than {MAX_MANIFEST_BYTES}"),
        ),
    };
    Err(Error::field(&field, message))
}

fn json_len<T: Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}
