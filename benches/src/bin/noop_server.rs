//! The load test's baseline: a hyper server on the same runtime settings as
//! the bidder that reads the body and answers 204. The bidder's throughput is
//! reported as a ratio of this one's, measured in the same run.
//!
//! `noop-server ADDR ANSWER_FILE` answers 200 with that file's bytes as JSON
//! instead: given the bidder's own answer to the bench request, it costs what
//! the bidder's answer costs to write and the client to read, with no bid
//! made. Its ratio to the 204 server is the most a bidder answering that
//! answer can reach in the same run.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8089".into());
    let answer = match std::env::args().nth(2) {
        Some(path) => Some(Bytes::from(std::fs::read(path)?)),
        None => None,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            // SIGTERM ends it by returning from main, as the bidder does:
            // a profile-instrumented build (scripts/pgo.sh) writes its
            // counts on that exit, and the default action would lose them.
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            println!("noop listening: {}", listener.local_addr()?);
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => accepted?,
                    _ = term.recv() => return Ok(()),
                };
                let _ = stream.set_nodelay(true);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| {
                        let answer = answer.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            let r = match answer {
                                Some(json) => {
                                    // The bidder's headers on a bid, as well.
                                    use hyper::header::{HeaderValue, CONTENT_TYPE};
                                    let mut r = Response::new(Full::new(json));
                                    let h = r.headers_mut();
                                    h.insert(
                                        CONTENT_TYPE,
                                        HeaderValue::from_static("application/json"),
                                    );
                                    h.insert("x-openrtb-version", HeaderValue::from_static("2.6"));
                                    r
                                }
                                None => {
                                    let mut r = Response::new(Full::new(Bytes::new()));
                                    *r.status_mut() = StatusCode::NO_CONTENT;
                                    r
                                }
                            };
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
