//! Shared harness of the integration tests: transports, a per-test executor, bounded waits,
//! position-dependent data patterns, transport wrappers that count or fail, and a tiny frame codec
//! written independently of the crate's (so a codec bug cannot hide itself).
//!
//! Every wait is bounded: a bug shows as a panic naming what it waited for, never as a hang.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::task::AtomicWaker;
use smol::future::FutureExt;
use smol::{Executor, Timer};
use ysmux::{Config, Error, Session, Stream};

/// The fault-injecting transport wrapper of `tests/faults.rs`, for [`FlakyTransport`].
#[path = "../faulty/mod.rs"]
pub mod faulty;

pub mod clock;
pub mod counting;

pub mod ours;
pub mod peers;
pub mod relay;
pub mod sink;

/// The executor a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    /// A smol `Executor` driven on the test's own thread.
    Smol,
    /// A tokio multi-thread runtime with 2 workers.
    Tokio,
}

/// The executor of one test, smol or tokio: the suite spawns on it without knowing which.
#[derive(Clone)]
pub enum Ex {
    Smol(Arc<Executor<'static>>),
    Tokio(tokio::runtime::Handle),
}

impl Ex {
    /// Spawns `f`; the task is cancelled when its handle is dropped (unless detached).
    pub fn spawn<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> Task<T> {
        match self {
            Ex::Smol(ex) => Task::Smol(Some(ex.spawn(f))),
            Ex::Tokio(rt) => Task::Tokio(Some(rt.spawn(f))),
        }
    }
}

/// A spawned task: awaiting it gives its output (a panic in it is re-raised); dropping it cancels
/// it, as smol's tasks do.
pub enum Task<T> {
    Smol(Option<smol::Task<T>>),
    Tokio(Option<tokio::task::JoinHandle<T>>),
}

impl<T> Task<T> {
    /// Lets the task run on by itself.
    pub fn detach(mut self) {
        match &mut self {
            Task::Smol(t) => t.take().expect("not yet detached").detach(),
            Task::Tokio(h) => drop(h.take()),
        }
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        match self {
            Task::Smol(t) => t.as_ref().map_or(true, |t| t.is_finished()),
            Task::Tokio(h) => h.as_ref().map_or(true, |h| h.is_finished()),
        }
    }
}

impl<T> Future for Task<T> {
    type Output = T;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        match &mut *self {
            Task::Smol(t) => {
                let t = t.as_mut().expect("polled after completion or detach");
                std::pin::Pin::new(t).poll(cx)
            }
            Task::Tokio(h) => {
                let h = h.as_mut().expect("polled after completion or detach");
                match std::task::ready!(std::pin::Pin::new(h).poll(cx)) {
                    Ok(v) => std::task::Poll::Ready(v),
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => panic!("task failed: {e}"),
                }
            }
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let Task::Tokio(Some(h)) = self {
            h.abort();
        }
    }
}

/// The longest a whole test may take.
pub const TEST_LIMIT: Duration = Duration::from_secs(120);
/// The longest one step of a test may wait for something that must happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// Runs one test on its own smol executor, bounded by [`TEST_LIMIT`].
pub fn run<F, Fut>(test: F)
where
    F: FnOnce(Ex) -> Fut,
    Fut: Future<Output = ()>,
{
    run_on(Rt::Smol, test)
}

/// Runs one test on its own executor of the given kind, bounded by [`TEST_LIMIT`].
pub fn run_on<F, Fut>(rt: Rt, test: F)
where
    F: FnOnce(Ex) -> Fut,
    Fut: Future<Output = ()>,
{
    match rt {
        Rt::Smol => {
            let ex = Arc::new(Executor::new());
            let fut = test(Ex::Smol(ex.clone()));
            smol::block_on(ex.run(within(TEST_LIMIT, "the whole test", fut)));
        }
        Rt::Tokio => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            let fut = test(Ex::Tokio(runtime.handle().clone()));
            runtime.block_on(within(TEST_LIMIT, "the whole test", fut));
        }
    }
}

async fn expire<T>(limit: Duration, what: &str) -> T {
    Timer::after(limit).await;
    panic!("timed out after {limit:?} waiting for: {what}")
}

/// Awaits `fut`, panicking with `what` if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    fut.or(expire(limit, what)).await
}

/// Awaits `fut` for at most [`WAIT`].
pub async fn wait<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within(WAIT, what, fut).await
}

/// Awaits `fut` for at most [`WAIT`], naming no step: for tests that bound every await alike.
/// Works under any runtime (smol's timer runs on a thread of its own).
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    within(WAIT, "a step of the test", fut).await
}

/// Polls `cond` (yielding between tries, sleeping a little once it takes a while) until it holds,
/// for at most [`WAIT`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    wait(what, async {
        let mut tries = 0u32;
        while !cond() {
            tries += 1;
            if tries < 100 {
                smol::future::yield_now().await;
            } else {
                Timer::after(Duration::from_millis(1)).await;
            }
        }
    })
    .await
}

// ----- transports -----

/// How much the conformance suite's heavy behaviours move over a transport. A slow transport
/// takes smaller volumes and counts, chosen so that each behaviour still checks the same property
/// (see [`Sizes::SLOW`]).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// `echo_many_streams`: how many streams, and the longest stream's length (beyond one window).
    pub echo_streams: u64,
    pub echo_max_len: u64,
    /// `flow_control_is_per_stream`: what is written to the stream never read (beyond one window),
    /// and what the other stream moves meanwhile (beyond one window too).
    pub flow_unread_len: u64,
    pub flow_other_len: u64,
    /// `bidirectional_256_streams`: how many streams, and what each side writes on each (beyond
    /// the confirm threshold, a sixteenth of the window).
    pub bidi_streams: usize,
    pub bidi_len: u64,
    /// `cancel_safe_exact_writes`: the longest single write (short enough that writes both
    /// complete and lose their race against the timer, as the behaviour requires of itself).
    pub cancel_max_write: usize,
    /// `id_recycling_200k_cycles`: open/close cycles, in batches of this many.
    pub recycle_cycles: usize,
    pub recycle_batch: usize,
    /// `concurrent_opens_never_merge`: streams each side opens.
    pub concurrent_opens: u32,
}

impl Sizes {
    /// What the suite moves over a fast transport.
    pub const FULL: Sizes = Sizes {
        echo_streams: 64,
        echo_max_len: 900_000,
        flow_unread_len: 8 << 20,
        flow_other_len: 64 << 20,
        bidi_streams: 256,
        bidi_len: 160 * 1024,
        cancel_max_write: 200_000,
        recycle_cycles: 200_000,
        recycle_batch: 500,
        concurrent_opens: 1000,
    };

    /// What the suite moves over a transport that moves one byte per call (see
    /// [`FlakyTransport`]): every length that must exceed a window, a confirm threshold or a
    /// frame still does, and the id space is still used up (more opens than ids).
    pub const SLOW: Sizes = Sizes {
        echo_streams: 8,
        echo_max_len: 600_000,
        flow_unread_len: 512 * 1024 + 100_000,
        flow_other_len: 600_000,
        bidi_streams: 16,
        bidi_len: 160 * 1024,
        cancel_max_write: 20_000,
        recycle_cycles: 70_000,
        recycle_batch: 500,
        concurrent_opens: 1000,
    };
}

/// A way to make a connected pair of transports.
pub trait Transport: 'static {
    /// One end.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// What the heavy behaviours of the conformance suite move over this transport.
    const SIZES: Sizes = Sizes::FULL;
    /// A connected pair: (client end, server end).
    fn pair() -> impl Future<Output = (Self::Io, Self::Io)>;
}

/// The crate's in-memory pipe.
pub struct PipeTransport;

impl Transport for PipeTransport {
    type Io = ysmux::Pipe;
    async fn pair() -> (ysmux::Pipe, ysmux::Pipe) {
        ysmux::pipe()
    }
}

/// The crate's pipe with a [`faulty::Flaky`] wrapper on both ends: every read and every write
/// moves exactly one byte, and one try in three returns `Pending` at random (seeded; it wakes
/// itself, so nothing stalls). It never fails. The seeds are fixed so that a run can be repeated;
/// `SMUX_FLAKY_SEED=<n>` picks others.
pub struct FlakyTransport;

impl Transport for FlakyTransport {
    type Io = faulty::Flaky<ysmux::Pipe>;
    const SIZES: Sizes = Sizes::SLOW;
    async fn pair() -> (Self::Io, Self::Io) {
        let seed: u64 = std::env::var("SMUX_FLAKY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let (a, b) = ysmux::pipe();
        (
            faulty::Flaky::new(a, faulty::Plan::trickle(2 * seed)),
            faulty::Flaky::new(b, faulty::Plan::trickle(2 * seed + 1)),
        )
    }
}

/// Loopback TCP.
pub struct TcpTransport;

impl Transport for TcpTransport {
    type Io = smol::net::TcpStream;
    async fn pair() -> (Self::Io, Self::Io) {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (client, server) = wait(
            "loopback TCP connect",
            smol::future::zip(smol::net::TcpStream::connect(addr), listener.accept()),
        )
        .await;
        let client = client.expect("connect");
        let (server, _) = server.expect("accept");
        client.set_nodelay(true).expect("nodelay");
        server.set_nodelay(true).expect("nodelay");
        (client, server)
    }
}

/// A Unix socket pair.
pub struct UnixTransport;

impl Transport for UnixTransport {
    type Io = smol::net::unix::UnixStream;
    async fn pair() -> (Self::Io, Self::Io) {
        smol::net::unix::UnixStream::pair().expect("unix socket pair")
    }
}

/// Loopback TCP with tokio's sockets, through `tokio_util::compat` (needs a tokio runtime).
pub struct TokioTcpTransport;

impl Transport for TokioTcpTransport {
    type Io = tokio_util::compat::Compat<tokio::net::TcpStream>;
    async fn pair() -> (Self::Io, Self::Io) {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (client, server) = wait(
            "loopback TCP connect",
            smol::future::zip(tokio::net::TcpStream::connect(addr), listener.accept()),
        )
        .await;
        let (client, (server, _)) = (client.expect("connect"), server.expect("accept"));
        client.set_nodelay(true).expect("nodelay");
        server.set_nodelay(true).expect("nodelay");
        (client.compat(), server.compat())
    }
}

/// A Unix socket pair with tokio's sockets, through `tokio_util::compat`.
pub struct TokioUnixTransport;

impl Transport for TokioUnixTransport {
    type Io = tokio_util::compat::Compat<tokio::net::UnixStream>;
    async fn pair() -> (Self::Io, Self::Io) {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        let (a, b) = tokio::net::UnixStream::pair().expect("unix socket pair");
        (a.compat(), b.compat())
    }
}

/// TLS (futures-rustls, ring) over loopback TCP, with a certificate made for the test.
pub struct TlsTransport;

/// One end of a TLS connection: the client's and the server's stream types differ.
pub enum TlsIo {
    Client(Box<futures_rustls::client::TlsStream<smol::net::TcpStream>>),
    Server(Box<futures_rustls::server::TlsStream<smol::net::TcpStream>>),
}

macro_rules! tls_io_delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut *$self {
            TlsIo::Client($s) => $e,
            TlsIo::Server($s) => $e,
        }
    };
}

impl AsyncRead for TlsIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        tls_io_delegate!(self, s => std::pin::Pin::new(&mut **s).poll_read(cx, buf))
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        tls_io_delegate!(self, s => std::pin::Pin::new(&mut **s).poll_write(cx, buf))
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        tls_io_delegate!(self, s => std::pin::Pin::new(&mut **s).poll_flush(cx))
    }
    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        tls_io_delegate!(self, s => std::pin::Pin::new(&mut **s).poll_close(cx))
    }
}

/// A server and a client TLS config that trust one self-signed certificate for "localhost".
pub fn tls_configs() -> (
    futures_rustls::rustls::ServerConfig,
    futures_rustls::rustls::ClientConfig,
) {
    use futures_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("self-signed certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .expect("server certificate");
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("trust the certificate");
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, client)
}

impl Transport for TlsTransport {
    type Io = TlsIo;
    async fn pair() -> (TlsIo, TlsIo) {
        use futures_rustls::rustls::pki_types::ServerName;
        let (server_config, client_config) = tls_configs();
        let (tcp_client, tcp_server) = TcpTransport::pair().await;
        let connector = futures_rustls::TlsConnector::from(Arc::new(client_config));
        let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(server_config));
        let name = ServerName::try_from("localhost").expect("server name");
        let (client, server) = wait(
            "TLS handshake",
            smol::future::zip(
                connector.connect(name, tcp_client),
                acceptor.accept(tcp_server),
            ),
        )
        .await;
        (
            TlsIo::Client(Box::new(client.expect("TLS client handshake"))),
            TlsIo::Server(Box::new(server.expect("TLS server handshake"))),
        )
    }
}

// ----- sessions -----

/// A client and a server session over one transport, their drivers running on the test's executor.
pub struct Pair {
    pub client: Session,
    pub server: Session,
    pub client_driver: Task<Result<(), Error>>,
    pub server_driver: Task<Result<(), Error>>,
}

/// Starts a client on `a` and a server on `b`.
pub fn sessions<A, B>(ex: &Ex, a: A, b: B, client: Config, server: Config) -> Pair
where
    A: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, cd) = Session::client(a, client);
    let (server, sd) = Session::server(b, server);
    Pair {
        client,
        server,
        client_driver: ex.spawn(cd),
        server_driver: ex.spawn(sd),
    }
}

/// A client and a server over an in-memory pipe, their drivers spawned (and detached) on the
/// current tokio runtime.
pub fn tokio_pipe_pair(client: Config, server: Config) -> (Session, Session) {
    let (a, b) = ysmux::pipe();
    let (client, driver) = Session::client(a, client);
    tokio::spawn(driver);
    let (server, driver) = Session::server(b, server);
    tokio::spawn(driver);
    (client, server)
}

/// A client and a server with default configs over a fresh pair of `T`.
pub async fn pair<T: Transport>(ex: &Ex) -> Pair {
    let (a, b) = T::pair().await;
    sessions(ex, a, b, Config::default(), Config::default())
}

/// Accepts every stream of `session` and echoes it until it ends.
pub fn serve_echo(ex: &Ex, session: Session) {
    let ex2 = ex.clone();
    ex.spawn(async move {
        while let Ok(s) = session.accept().await {
            ex2.spawn(echo(s)).detach();
        }
    })
    .detach();
}

/// Accepts every stream of `session` and reads it to the end, discarding the data.
pub fn serve_drain(ex: &Ex, session: Session) {
    let ex2 = ex.clone();
    ex.spawn(async move {
        while let Ok(mut s) = session.accept().await {
            ex2.spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .detach();
        }
    })
    .detach();
}

/// Echoes everything read on `s` back on it, until end-of-stream or an error.
pub async fn echo(mut s: Stream) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

// ----- data patterns -----

/// The 8 bytes at `8 * word` of the pattern `seed`.
fn pattern_word(seed: u64, word: u64) -> [u8; 8] {
    let x = word
        .wrapping_add(seed.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x ^ (x >> 29)).to_le_bytes()
}

/// The byte at `offset` of the pattern `seed`: position-dependent, so a lost, duplicated or
/// reordered byte shows, and different for each seed, so data of two streams never matches.
pub fn pattern_byte(seed: u64, offset: u64) -> u8 {
    pattern_word(seed, offset / 8)[(offset % 8) as usize]
}

/// Fills `buf` with the pattern `seed` from `offset` (a word at a time: the tests run unoptimized).
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let at = offset + i as u64;
        let word = pattern_word(seed, at / 8);
        let skip = (at % 8) as usize;
        let n = (8 - skip).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[skip..skip + n]);
        i += n;
    }
}

/// `len` bytes of the pattern `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill(seed, 0, &mut v);
    v
}

/// Panics unless `buf` is the pattern `seed` from `offset`.
pub fn check(seed: u64, offset: u64, buf: &[u8], what: &str) {
    let mut want = vec![0; buf.len()];
    fill(seed, offset, &mut want);
    if buf != &want[..] {
        let i = buf
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .expect("a difference");
        panic!(
            "{what}: byte {} of the pattern {seed} is wrong",
            offset + i as u64
        );
    }
}

/// Writes `len` bytes of the pattern `seed` in writes of at most `chunk` bytes.
pub async fn write_pattern<W: AsyncWrite + Unpin>(w: &mut W, seed: u64, len: u64, chunk: usize) {
    let mut buf = vec![0u8; chunk];
    let mut off = 0u64;
    while off < len {
        let n = chunk.min((len - off) as usize);
        fill(seed, off, &mut buf[..n]);
        w.write_all(&buf[..n])
            .await
            .unwrap_or_else(|e| panic!("write at {off} of {len}: {e}"));
        off += n as u64;
    }
}

/// Reads exactly `len` bytes and checks they are the pattern `seed`.
pub async fn read_pattern<R: AsyncRead + Unpin>(r: &mut R, seed: u64, len: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    while off < len {
        let want = buf.len().min((len - off) as usize);
        let n = r
            .read(&mut buf[..want])
            .await
            .unwrap_or_else(|e| panic!("read at {off} of {len}: {e}"));
        assert!(n > 0, "end-of-stream after {off} of {len} bytes");
        check(seed, off, &buf[..n], "read_pattern");
        off += n as u64;
    }
}

/// Reads to end-of-stream, checking the pattern; returns the count.
pub async fn read_pattern_to_eof<R: AsyncRead + Unpin>(r: &mut R, seed: u64) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    loop {
        let n = r
            .read(&mut buf)
            .await
            .unwrap_or_else(|e| panic!("read at {off}: {e}"));
        if n == 0 {
            return off;
        }
        check(seed, off, &buf[..n], "read_pattern_to_eof");
        off += n as u64;
    }
}

// ----- transport wrappers -----

/// A switch that makes a [`Faulty`] transport fail every operation from the moment it is thrown.
#[derive(Clone, Default)]
pub struct FailSwitch {
    inner: Arc<FailInner>,
}

#[derive(Default)]
struct FailInner {
    failed: AtomicBool,
    read: AtomicWaker,
    write: AtomicWaker,
}

impl FailSwitch {
    /// From now on, every read, write, flush and close of the transport fails with
    /// `ConnectionReset`; pending ones are woken to see it.
    pub fn fail(&self) {
        self.inner.failed.store(true, Ordering::SeqCst);
        self.inner.read.wake();
        self.inner.write.wake();
    }

    fn check(&self) -> io::Result<()> {
        if self.inner.failed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "injected transport failure",
            ))
        } else {
            Ok(())
        }
    }
}

/// A transport that fails on demand (see [`FailSwitch`]).
pub struct Faulty<T> {
    pub io: T,
    pub switch: FailSwitch,
}

impl<T: AsyncRead + Unpin> AsyncRead for Faulty<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.switch.inner.read.register(cx.waker());
        self.switch.check()?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Faulty<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.switch.inner.write.register(cx.waker());
        self.switch.check()?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.switch.inner.write.register(cx.waker());
        self.switch.check()?;
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.switch.check()?;
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// What a [`Counting`] transport has seen.
#[derive(Clone, Default)]
pub struct Counts {
    /// Bytes written, bytes written before the last flush, writes that moved bytes.
    inner: Arc<(AtomicU64, AtomicU64, AtomicU64)>,
}

impl Counts {
    /// Bytes written to the transport.
    pub fn written(&self) -> u64 {
        self.inner.0.load(Ordering::SeqCst)
    }
    /// Writes to the transport that moved bytes.
    pub fn writes(&self) -> u64 {
        self.inner.2.load(Ordering::SeqCst)
    }
    /// Bytes written to the transport before its last completed flush.
    pub fn flushed(&self) -> u64 {
        self.inner.1.load(Ordering::SeqCst)
    }
}

/// A transport that counts the bytes written and flushed through it, and the writes.
pub struct Counting<T> {
    pub io: T,
    pub counts: Counts,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counting<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.counts.inner.0.fetch_add(n as u64, Ordering::SeqCst);
            if n > 0 {
                self.counts.inner.2.fetch_add(1, Ordering::SeqCst);
            }
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let written = self.counts.written();
        let r = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            self.counts.inner.1.fetch_max(written, Ordering::SeqCst);
        }
        r
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

// ----- frames, encoded independently of the crate -----

pub const SYN: u8 = 0;
pub const FIN: u8 = 1;
pub const PSH: u8 = 2;
pub const CFM: u8 = 3;
pub const VRM: u8 = 4;
pub const PIN: u8 = 5;

/// A frame as it travels: header fields plus the payload (PSH only).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub cmd: u8,
    pub sid: u16,
    pub len: u32,
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = ["SYN", "FIN", "PSH", "CFM", "VRM"]
            .get(self.cmd as usize)
            .copied()
            .unwrap_or("???");
        write!(f, "{name}(sid={}, len={}", self.sid, self.len)?;
        if !self.payload.is_empty() {
            let shown: Vec<String> = self
                .payload
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect();
            write!(
                f,
                ", payload {}{}",
                shown.join(""),
                if self.payload.len() > 8 { ".." } else { "" }
            )?;
        }
        f.write_str(")")
    }
}

impl Frame {
    pub fn new(cmd: u8, sid: u16, len: u32) -> Frame {
        Frame {
            cmd,
            sid,
            len,
            payload: Vec::new(),
        }
    }
    pub fn syn(sid: u16) -> Frame {
        Frame::new(SYN, sid, 0)
    }
    pub fn fin(sid: u16) -> Frame {
        Frame::new(FIN, sid, 0)
    }
    pub fn cfm(sid: u16, n: u32) -> Frame {
        Frame::new(CFM, sid, n)
    }
    pub fn psh(sid: u16, payload: &[u8]) -> Frame {
        Frame {
            cmd: PSH,
            sid,
            len: payload.len() as u32,
            payload: payload.to_vec(),
        }
    }
    /// The wire bytes: `cmd | sid (LE u16) | len (LE u32) | payload`.
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = vec![self.cmd];
        v.extend_from_slice(&self.sid.to_le_bytes());
        v.extend_from_slice(&self.len.to_le_bytes());
        v.extend_from_slice(&self.payload);
        v
    }
}

/// xtaci/smux's keepalive and (version 2) window update; its SYN, FIN and PSH are the numbers
/// above.
pub const XNOP: u8 = 3;
pub const XUPD: u8 = 4;

/// An xtaci/smux frame's wire bytes: `version | cmd | length (LE u16) | sid (LE u32) | payload`.
pub fn xtaci_frame(version: u8, cmd: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("an xtaci payload fits 16 bits");
    let mut v = vec![version, cmd];
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&sid.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// A client session's first frame: its offer of window growth (src/core/extension.rs).
pub fn offer() -> Frame {
    Frame::new(VRM, 0x7973, 0x6D75_7831)
}

/// A server session's answer to [`offer`]: it grows windows too.
pub fn accept_offer() -> Frame {
    Frame::new(VRM, 0x7973, 0x6D75_7832)
}

/// What the original answers to [`offer`], as to any probe (docs/PROTOCOL.md 8).
pub fn offer_answer() -> Frame {
    Frame::new(VRM, 0x7390, 0x6D31_7578)
}

/// Decodes a 7-byte header (the payload, if any, is left empty).
pub fn header(b: &[u8]) -> Frame {
    assert_eq!(b.len(), 7, "a header is 7 bytes");
    Frame {
        cmd: b[0],
        sid: u16::from_le_bytes([b[1], b[2]]),
        len: u32::from_le_bytes([b[3], b[4], b[5], b[6]]),
        payload: Vec::new(),
    }
}

/// Splits a byte stream into frames (panics on a cut-off frame).
pub fn parse_frames(mut b: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while !b.is_empty() {
        assert!(b.len() >= 7, "cut-off header: {b:02x?}");
        let cmd = b[0];
        let sid = u16::from_le_bytes([b[1], b[2]]);
        let len = u32::from_le_bytes([b[3], b[4], b[5], b[6]]);
        let plen = if cmd == PSH { len as usize } else { 0 };
        assert!(b.len() >= 7 + plen, "cut-off payload");
        out.push(Frame {
            cmd,
            sid,
            len,
            payload: b[7..7 + plen].to_vec(),
        });
        b = &b[7 + plen..];
    }
    out
}

/// Decodes a hex string (whitespace ignored).
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A scripted peer on a raw transport: sends exact bytes and reads exact frames.
pub struct RawPeer<T> {
    pub io: T,
}

impl<T: AsyncRead + AsyncWrite + Unpin> RawPeer<T> {
    pub fn new(io: T) -> Self {
        RawPeer { io }
    }

    /// Writes raw bytes and flushes.
    pub async fn send_bytes(&mut self, b: &[u8]) {
        wait("the raw peer's write", async {
            self.io.write_all(b).await.expect("raw peer write");
            self.io.flush().await.expect("raw peer flush");
        })
        .await
    }

    /// Writes frames (all in one write) and flushes.
    pub async fn send(&mut self, frames: &[Frame]) {
        let b: Vec<u8> = frames.iter().flat_map(Frame::bytes).collect();
        self.send_bytes(&b).await
    }

    /// Reads exactly `n` bytes.
    pub async fn recv_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        wait(
            &format!("{n} bytes from the session"),
            self.io.read_exact(&mut b),
        )
        .await
        .unwrap_or_else(|e| panic!("reading {n} bytes from the session: {e}"));
        b
    }

    /// Reads one frame.
    pub async fn recv(&mut self) -> Frame {
        let h = self.recv_bytes(7).await;
        let cmd = h[0];
        let sid = u16::from_le_bytes([h[1], h[2]]);
        let len = u32::from_le_bytes([h[3], h[4], h[5], h[6]]);
        let payload = if cmd == PSH {
            self.recv_bytes(len as usize).await
        } else {
            Vec::new()
        };
        Frame {
            cmd,
            sid,
            len,
            payload,
        }
    }

    /// Reads a client session's offer of window growth and answers it as the original does: the
    /// session then keeps to the base protocol, as against the original.
    pub async fn answer_offer_like_the_original(&mut self) {
        self.expect(offer()).await;
        self.send(&[offer_answer()]).await;
    }

    /// Reads one frame and checks it is `want`.
    pub async fn expect(&mut self, want: Frame) {
        let got = self.recv().await;
        assert_eq!(got, want, "the session sent the wrong frame");
    }

    /// Reads frames up to end-of-stream.
    pub async fn recv_to_eof(&mut self) -> Vec<Frame> {
        let mut b = Vec::new();
        wait(
            "end-of-stream from the session",
            self.io.read_to_end(&mut b),
        )
        .await
        .expect("raw peer read to end");
        parse_frames(&b)
    }
}

/// A waker that counts its wakes: for polling a future by hand.
#[derive(Default)]
pub struct WakeCount(std::sync::atomic::AtomicUsize);

impl WakeCount {
    /// How often it was woken.
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl std::task::Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Polls `fut` once with a [`WakeCount`] waker and asserts that it is pending (tower-test's
/// `assert_pending!`): a test that something waits needs no sleep. Returns the count, so that
/// the test can assert later that nothing woke it, or that something did.
pub fn assert_pending<F: Future + ?Sized>(
    fut: std::pin::Pin<&mut F>,
    what: &str,
) -> Arc<WakeCount> {
    let count = Arc::new(WakeCount::default());
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(fut.poll(&mut cx).is_pending(), "{what}: ready at once");
    count
}

/// `streams` streams of `session` at once, each writing `per_stream` bytes of its own pattern
/// (seeds from `seed`) to an echoing peer while it reads the echo back, every byte checked, then
/// closing; bounded. Returns the seconds it took.
pub async fn echo_through(
    ex: &Ex,
    session: &Session,
    streams: u64,
    per_stream: u64,
    seed: u64,
) -> f64 {
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let session = session.clone();
            ex.spawn(async move {
                let s = session.open().await.expect("open");
                let (mut r, mut w) = s.split();
                futures::join!(
                    write_pattern(&mut w, seed + i, per_stream, 32 * 1024),
                    read_pattern(&mut r, seed + i, per_stream)
                );
                w.close().await.expect("close");
            })
        })
        .collect();
    within(Duration::from_secs(100), "every echo stream", async {
        for t in tasks {
            t.await;
        }
    })
    .await;
    start.elapsed().as_secs_f64()
}

/// `streams` streams of `session` at once, each sending `per_stream` bytes by the sink protocol
/// (`sink.rs`) to a sink server and waiting for its 0x01, then closing; bounded. Returns the
/// seconds it took.
pub async fn sink_through(ex: &Ex, session: &Session, streams: u64, per_stream: u64) -> f64 {
    let data = Arc::new(pattern(7, 32 * 1024));
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (session, data) = (session.clone(), data.clone());
            ex.spawn(async move {
                let mut s = session.open().await.expect("open");
                sink::request(&mut s, per_stream as usize, &data)
                    .await
                    .unwrap_or_else(|e| panic!("sink stream {}: {e}", s.id()));
                s.close().await.expect("close");
            })
        })
        .collect();
    within(Duration::from_secs(100), "every sink stream", async {
        for t in tasks {
            t.await;
        }
    })
    .await;
    start.elapsed().as_secs_f64()
}
