//! HTTP/1.1 over smux streams under tokio: many requests in parallel over one TCP connection.
//!
//! The server serves every stream the peer opens with hyper, through `Session::serve`. The client
//! gets its connections from the session's opener, composed with tower middleware: a timeout and
//! a concurrency limit around a small service that sends one request per stream. Its readiness is
//! the opener's, so the client also waits when the session is at `Config::with_max_streams`.
//!
//! ```text
//! cargo run --example hyper                   # streams go through tokio_util's compat
//! cargo run --example hyper --features tokio  # streams are tokio io themselves
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::TokioAsyncReadCompatExt;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use ysmux::tower::Opener;
use ysmux::{Config, Session, Stream};

const REQUESTS: usize = 64;
const IN_FLIGHT: usize = 8;

/// A smux stream as hyper's io: directly with the `tokio` feature...
#[cfg(feature = "tokio")]
fn http_io(stream: Stream) -> TokioIo<Stream> {
    TokioIo::new(stream)
}

/// ...or through tokio_util's compat without it.
#[cfg(not(feature = "tokio"))]
fn http_io(stream: Stream) -> TokioIo<tokio_util::compat::Compat<Stream>> {
    use tokio_util::compat::FuturesAsyncReadCompatExt;
    TokioIo::new(stream.compat())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(server(listener));

    // One transport for everything.
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (session, driver) = Session::client(tcp.compat(), Config::default().with_max_streams(16));
    let driver = tokio::spawn(driver);

    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    // What bounds what. The concurrency limit's permit covers a whole request (a call of
    // `HttpOverSmux` opens a stream, sends, reads the answer, and the stream goes with it), so at
    // most IN_FLIGHT requests, and their streams, are in flight. The timeout times each call once
    // it has a permit and a stream: tower's `Timeout` does not time the wait for readiness (put a
    // `Buffer` under it for that; see the crate's tower module). `with_max_streams(16)` above
    // bounds the streams open at once, whoever holds them.
    let client = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .concurrency_limit(IN_FLIGHT)
        .service(HttpOverSmux {
            opener: session.opener(),
            in_flight: in_flight.clone(),
            peak: peak.clone(),
        });

    let start = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..REQUESTS {
        let client = client.clone();
        requests.spawn(async move {
            let req = Request::post(format!("/items/{i}")).body(Full::from(format!("item {i}")))?;
            let res = client.oneshot(req).await?;
            let text = String::from_utf8(res.into_body().to_vec())?;
            if !text.ends_with(&format!("POST /items/{i}: item {i}")) {
                return Err(format!("request {i}: unexpected answer {text:?}").into());
            }
            Ok::<_, BoxError>((i, text))
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = requests.join_next().await {
        answers.push(done??);
    }
    let took = start.elapsed();

    answers.sort();
    for (i, text) in answers.iter().take(3).chain(answers.last()) {
        println!("  request {i:>2} -> {text}");
        if *i == 2 {
            println!("  ...");
        }
    }
    println!(
        "{} HTTP/1.1 requests, one smux stream each, over one TCP connection in {:.1?}; \
         at most {} in flight (limit {IN_FLIGHT})",
        answers.len(),
        took,
        peak.load(Ordering::SeqCst),
    );

    session.close().await?;
    driver.await??;
    server.await??;
    println!("session closed cleanly");
    Ok(())
}

/// Serves every stream of the one connection it accepts with hyper.
async fn server(listener: TcpListener) -> Result<(), BoxError> {
    let (tcp, _) = listener.accept().await?;
    tcp.set_nodelay(true)?;
    let (session, driver) = Session::server(tcp.compat(), Config::default());
    let driver = tokio::spawn(driver);

    let http = tower::service_fn(|stream: Stream| {
        let id = stream.id();
        let answer = hyper::service::service_fn(move |req| answer(id, req));
        hyper::server::conn::http1::Builder::new().serve_connection(http_io(stream), answer)
    });
    session
        .serve(http, |conn| {
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("server: connection failed: {e}");
                }
            });
        })
        .await?;
    driver.await??;
    Ok(())
}

async fn answer(stream: u16, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let text = format!(
        "stream {stream:>5}: {method} {path}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(Response::new(Full::from(text)))
}

/// One HTTP/1.1 exchange per smux stream, with the opener's readiness as its own.
#[derive(Clone)]
struct HttpOverSmux {
    opener: Opener,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Service<Request<Full<Bytes>>> for HttpOverSmux {
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Ready when a stream is reserved: at the session's stream limit this waits.
        Service::<()>::poll_ready(&mut self.opener, cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> Self::Future {
        let open = self.opener.call(());
        let (in_flight, peak) = (self.in_flight.clone(), self.peak.clone());
        Box::pin(async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let result = exchange(open.await?, req).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        })
    }
}

async fn exchange(stream: Stream, req: Request<Full<Bytes>>) -> Result<Response<Bytes>, BoxError> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(http_io(stream)).await?;
    let conn = tokio::spawn(conn);
    let (parts, body) = sender.send_request(req).await?.into_parts();
    let body = body.collect().await?.to_bytes();
    // Dropping the sender ends the connection, which closes the stream and frees its id.
    drop(sender);
    conn.await??;
    Ok(Response::from_parts(parts, body))
}
