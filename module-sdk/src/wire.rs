//! The wire contract in one place: every header, claim set and document that the platform
//! and modules exchange. The platform (`plinth-registry`) uses these same types, so the two
//! sides cannot drift; each is defined in the module that explains it and gathered here.
//!
//! | what | travels | type |
//! | --- | --- | --- |
//! | tenant context | gateway → module, header [`CONTEXT_HEADER`] | [`ContextClaims`] (ES256 JWT, `exp` ≤ [`MAX_CONTEXT_LIFETIME_SECS`]) |
//! | module API key | module → platform, header [`API_KEY_HEADER`] | opaque `plk_…` |
//! | module-to-module call | module → gateway → module: [`API_KEY_HEADER`] with [`TENANT_HEADER`], or with the caller's [`CONTEXT_HEADER`] (for its user) | the callee's context names `calling_module` |
//! | resolved configuration | platform → module, `GET …/config` with `ETag` | [`ResolvedConfig`], [`ConfigTier`] |
//! | lifecycle hook | platform → module, `POST` to the manifest's path | [`HookCall`] → [`HookReply`] |
//! | event | bus ↔ module | [`Event`] |
//! | error | every answer | [`ProblemDocument`] ([`PROBLEM_JSON`]) |
//! | event queue | bus → ECS module, SQS `plinth-{module}-events` | what the runtime calls: [`EVENT_QUEUE_ACTIONS`] (the module's role grants exactly these) |

pub use crate::auth::MAX_CONTEXT_LIFETIME_SECS;
pub use crate::config_client::{ConfigTier, ResolvedConfig};
pub use crate::context::{CONTEXT_HEADER, CONTEXT_ISSUER, ContextClaims};
pub use crate::events::{Event, PLATFORM_SOURCE};
pub use crate::hooks::{HookCall, HookReply};
pub use crate::platform_client::{API_KEY_HEADER, TENANT_HEADER};
pub use crate::problem::{PROBLEM_JSON, ProblemDocument};

/// Request fields a module gets from the gateway alone, never from a client — on one machine
/// (the `plinth` gateway drops them) and on AWS (the API Gateway integration removes what it
/// may): the caller's credentials (the gateway sends the signed context instead); method
/// overrides, which frameworks' middleware reads as the method while the gateway authorized
/// the request line's; the client's address as a client claims it (the gateway sends the
/// address it saw). Matched in any case and with `_` for `-`.
pub const GATEWAY_ONLY_FIELDS: [&str; 14] = [
    "authorization",
    "proxy-authorization",
    API_KEY_HEADER,
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
];

/// The SQS actions a module's runtime calls on its event queue (finding it by name, reading,
/// deleting, extending a message's invisibility): the module role's `OwnEventQueue` statement
/// grants exactly these, so the two cannot drift.
pub const EVENT_QUEUE_ACTIONS: [&str; 5] = [
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
];
