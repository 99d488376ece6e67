//! Plinth's control plane: the module catalog and installer, tenancy, the configuration
//! resolver, RBAC, API keys and audit — and the ports they run over, with their adapters.
//!
//! - [`store`]: the `Store` port (DynamoDB, embedded redb) and the key design.

pub mod store;
