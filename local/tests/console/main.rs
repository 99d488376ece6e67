//! The console as `plinth up` serves it: the shell's page and files with their security
//! headers, the development sign-in whose token stays in an `HttpOnly` cookie, the console's
//! pass-through to the API, and module bundles staged in the data directory
//! (docs/console.md). `browser.rs` drives it in headless Chromium; `oidc.rs` signs in through
//! the test identity provider of `provider.rs`.

mod browser;
mod browser_admin;
mod browser_platform;
mod oidc;
mod provider;
mod served;
mod support;
