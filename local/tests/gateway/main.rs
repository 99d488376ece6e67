//! The gateway's transport (`plinth_local::gateway`): module requests decided by the
//! platform and forwarded, in-process and over TCP as `plinth up` serves them (on both
//! stores), the relay's framing against raw backends, and the transport against a stub
//! decision with no control plane behind it.

#[path = "../../../registry/tests/support/mod.rs"]
mod support;

mod served;

mod gateway;
mod relay;
mod stub;

/// Runs each scenario on the embedded store and on DynamoDB (moto).
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::api::TestPlatform::gateway()).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(platform) =
                        $crate::support::api::TestPlatform::gateway_on_dynamo(stringify!($case)).await
                    else {
                        return;
                    };
                    super::$case(platform).await;
                }
            )*
        }
    };
}

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
