//! The gateway's transport on one machine: how `plinth up` serves the platform API and passes
//! every other `/api/v1/{m}/…` request on to the module's backend. (On AWS, API Gateway is
//! the transport.)
//!
//! What to do with a module request is not decided here: the transport asks
//! [`Decide`](plinth_registry::gateway::Decide) — the control plane's decision, in
//! `plinth_registry::gateway` (identity, route, enablement, permission, rate limit, healthy
//! instance, signed context) — and forwards, or answers with its refusal.
//!
//! - [`Gateway::serve`] accepts client connections and starts each in the relay
//!   (`relay/`), which passes module requests on byte for byte;
//! - what the relay does not handle goes to hyper's HTTP/1.1 server (`proxy.rs`): the platform
//!   API's router, or module requests forwarded over a backend connection of its own;
//! - `body.rs`: a client's request body on hyper's path, whose failure is the client's;
//! - `fields.rs`: the header fields neither path forwards (hop-by-hop, and those only the
//!   gateway sends: credentials, method overrides, the client's address, `X-Plinth-*`).
//!
//! Both paths forward a module request's path in the canonical form the decision was made
//! on ([`canonical_path`](plinth_registry::gateway::canonical_path)), or refuse it with a 400.

mod body;
mod fields;
mod metering;
mod proxy;
mod relay;

use plinth_registry::Error;
use plinth_registry::gateway::Upstream;
use tokio::net::TcpStream;

pub use body::{ClientBody, ClientFault, NotForwarded};
pub use metering::Metered;
pub use proxy::{
    BODY_TIMEOUT, Gateway, GatewayBody, LinkedBody, RequestBody, UpstreamLink, router,
};
/// The relay's parsers, for the fuzz targets (`fuzz/`) only.
#[doc(hidden)]
pub use relay::fuzzing;

/// A new connection to `upstream`, with `TCP_NODELAY` (requests go in one write).
async fn connect(upstream: &Upstream) -> Result<TcpStream, String> {
    let address = upstream.address().map_err(|e| e.to_string())?;
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// 502: `module`'s backend failed to answer (`detail` says how); the relay's and hyper's
/// path's wording alike.
fn backend_failed(module: &str, detail: impl std::fmt::Display) -> Error {
    Error::BadGateway(format!("{module} did not answer: {detail}"))
}
