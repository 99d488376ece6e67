//! The session policy a module's role is assumed with for one tenant: item reads and writes
//! on the module's tables, only where every partition key the request touches is one of the
//! tenant's (`dynamodb:LeadingKeys` `StringLike` `{tenant}` or `{tenant}#*`).
//!
//! No `Scan`: it names no partition, so `ForAllValues` would hold for its empty set of keys;
//! the `Null` condition refuses any request without leading keys for the same reason.
//!
//! The resource is `*`: the session's permissions are the role's *and* this policy's, and the
//! role's own policy names the module's tables one by one. Naming them again here would only
//! grow the document, whose plaintext STS limits to 2,048 characters, with the module's
//! number of tables.

use serde_json::{Value, json};

use super::key::tenant_prefixes;

/// What the tenant's credentials may do: every item action the handle uses and its
/// single-partition siblings; never `Scan` or anything that is not item-level.
pub const TENANT_ACTIONS: [&str; 7] = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
];

/// The session policy for `tenant`.
#[must_use]
pub fn session_policy(tenant: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "OneTenantsRows",
            "Effect": "Allow",
            "Action": TENANT_ACTIONS,
            "Resource": "*",
            "Condition": {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": tenant_prefixes(tenant)},
                "Null": {"dynamodb:LeadingKeys": "false"}
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_policy_names_the_tenants_partitions_and_no_scan() {
        let policy = session_policy("acme");
        let statement = &policy["Statement"][0];
        assert_eq!(
            statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
            json!(["acme", "acme#*"])
        );
        assert_eq!(
            statement["Condition"]["Null"]["dynamodb:LeadingKeys"],
            "false"
        );
        assert!(!statement["Action"].to_string().contains("Scan"));
        let longest = session_policy(&"t".repeat(128)).to_string();
        assert!(
            longest.len() < 2048,
            "within STS's limit: {}",
            longest.len()
        );
    }
}
