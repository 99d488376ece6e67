//! Plinth registry.
