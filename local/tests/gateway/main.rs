//! The gateway's transport (`plinth_local::gateway`): module requests decided by the
//! platform and forwarded, in-process and over TCP as `plinth up` serves them (on both
//! stores), the relay's framing against raw backends, and the transport against a stub
//! decision with no control plane behind it.

#[path = "../../../registry/tests/support/mod.rs"]
mod support;

mod raw;
mod served;

mod gateway;
mod hardening;
mod relay;
mod stub;

/// The router the scenarios are driven through: the platform API with the gateway's proxy.
const ROUTER: support::api::MakeRouter = plinth_local::gateway::router;

/// Runs each scenario through the gateway as `plinth up` serves it, over TCP (embedded store).
#[macro_export]
macro_rules! served_too {
    ($($case:ident),* $(,)?) => {
        mod served {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::api::TestPlatform::served().await).await;
                }
            )*
        }
    };
}
