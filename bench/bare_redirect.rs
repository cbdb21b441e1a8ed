//! Baseline for the portal benchmark: the least an HTTP server on this
//! machine can do per request (hyper, same runtime settings, a fixed 302),
//! so storegate's redirect rate can be reported as a ratio against it.
//!
//! Usage: bare_redirect ADDR:PORT

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "0.0.0.0:2051".into());
    let listener = TcpListener::bind(&addr).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = service_fn(|_req| async {
                let mut r = Response::new(Full::new(Bytes::from_static(
                    b"<a href=\"http://192.0.2.1:2050/login\">sign in</a>",
                )));
                *r.status_mut() = StatusCode::FOUND;
                r.headers_mut().insert(
                    header::LOCATION,
                    "http://192.0.2.1:2050/login".parse().unwrap(),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
                Ok::<_, Infallible>(r)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
