//! The gateway as `plinth up` serves it, on a port of its own: the transport the shared test
//! platform (`registry/tests/support/`) sends requests over in the `served` scenarios.

use axum::body::Body;
use axum::http::{Request, header};

use crate::support::api::{Served, TestPlatform};

pub struct ServedGateway {
    pub addr: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServedGateway {
    pub async fn start(p: &TestPlatform) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let gateway = plinth_local::gateway::Gateway::of(&p.app);
        let task = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    /// Sends `request` on a new connection of its own.
    pub async fn send(
        &self,
        mut request: Request<Body>,
    ) -> axum::http::Response<hyper::body::Incoming> {
        let stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        if !request.headers().contains_key(header::HOST) {
            let host = self.addr.parse().unwrap();
            request.headers_mut().insert(header::HOST, host);
        }
        sender.send_request(request).await.unwrap()
    }

    /// Stops it, asserting that it stops within 5 s once its connections close.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .expect("the gateway stops once its connections close")
            .unwrap()
            .unwrap();
    }
}

impl Served for ServedGateway {
    fn send(
        &self,
        request: Request<Body>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = axum::response::Response> + Send + '_>>
    {
        Box::pin(async move { ServedGateway::send(self, request).await.map(Body::new) })
    }
}

impl TestPlatform {
    /// On the embedded store, with the gateway's proxy behind the platform API in-process.
    pub fn gateway() -> Self {
        Self::embedded_with(plinth_local::gateway::router)
    }

    /// On the embedded store, every request sent to the served gateway over TCP.
    pub async fn served() -> Self {
        let mut platform = Self::gateway();
        let served = ServedGateway::start(&platform).await;
        platform.served = Some(Box::new(served));
        platform
    }
}
