//! The platform's HTTP API, driven in-process through its router, on both stores.

#[path = "../support/mod.rs"]
mod support;

mod catalog;
mod install;
mod module_events;
mod tenancy;

/// Runs each scenario on the embedded store and on DynamoDB (moto).
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::api::TestPlatform::embedded()).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(platform) =
                        $crate::support::api::TestPlatform::dynamo(stringify!($case)).await
                    else {
                        return;
                    };
                    super::$case(platform).await;
                }
            )*
        }
    };
}
