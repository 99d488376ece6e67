//! Plinth module SDK.
