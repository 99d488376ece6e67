//! Plinth Lambda functions.
