//! Hooks over HTTP.
