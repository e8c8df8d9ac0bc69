//! The tunnel's logic: forwards TCP connections over a pool of multiplexed TCP connections
//! (`--connections`, one by default), optionally TLS, each local connection one smux stream.
//! Shared by `examples/tunnel/main.rs` (the command line) and `tests/tunnel.rs` and
//! `tests/tunnel_faults.rs` (which drive it end to end over loopback, the latter through a relay
//! that chops, stalls and cuts).
//!
//! The protocol has no half-close, so neither does the tunnel: when either side of a forwarded
//! connection ends, the whole connection ends (as with the original's users, e.g. kcptun).
//!
//! Nothing is lost in silence: a forwarded connection whose stream ended in an error (its
//! session died: the network failed, the peer vanished, the keepalive gave up) is reset (RST),
//! never closed with a FIN, on the client and on the server side, so an application can always
//! tell a truncated transfer from a whole one. Only a stream that ended cleanly ends its
//! connection with a FIN. Both ends run the keepalive ([`KEEPALIVE`] unless told otherwise), so a
//! session whose peer vanished without a word ends too, and its connections are reset.
//!
//! TLS (futures-rustls, ring provider) only changes the transport: the session code is the same
//! over a TCP stream or a TLS stream over it.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};
use futures_rustls::rustls::pki_types::pem::{self, PemObject};
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use ysmux::pool::{Pool, PoolConfig};
use ysmux::{Config, Protocol, Session, SleepFn, Stream};

/// The longest a TLS handshake may take, on either end, before the connection is given up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a local connection waits for a session to the tunnel server (while the client
/// reconnects) before it is dropped.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client lets open connections finish once told to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The keepalive of both ends by default: a session whose peer stopped answering ends 2 to 2¼ of
/// these after the last frame from it (its connections are reset; the client replaces the
/// session, the server lets it go).
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// Settings of either end of the tunnel beyond its addresses.
#[derive(Debug, Clone)]
pub struct Options {
    keepalive: Option<Duration>,
    protocol: Protocol,
}

impl Default for Options {
    /// The keepalive on, every [`KEEPALIVE`].
    fn default() -> Self {
        Options {
            keepalive: Some(KEEPALIVE),
            protocol: Protocol::Yddeng,
        }
    }
}

impl Options {
    /// Sets the keepalive interval of every session (`None` turns it off: a session whose peer
    /// vanished without a word then lives until the operating system gives up on the connection,
    /// which may be never).
    pub fn with_keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval;
        self
    }

    /// The keepalive interval.
    pub fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    /// Sets the smux the sessions speak (default yddeng's): a client's must be the server's;
    /// a server with [`Protocol::Detect`] serves clients of every smux.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The smux the sessions speak.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The config of every session.
    fn session_config(&self) -> Config {
        let config = Config::default().with_protocol(self.protocol);
        match self.keepalive {
            Some(interval) => config.with_keepalive(interval, tokio_sleep()),
            None => config,
        }
    }
}

/// tokio's timer, for the keepalive and the pool.
fn tokio_sleep() -> SleepFn {
    Arc::new(|d| Box::pin(tokio::time::sleep(d)))
}

/// The tunnel's server end: every connection accepted on `listener` carries a session (over TLS
/// if `tls` is given), and every stream of it is forwarded to a new TCP connection to `to`. Runs
/// until `shutdown` resolves, then closes every session (their streams end) and returns.
///
/// A failed TLS handshake is reported and ends only that connection. The sessions run with the
/// default [`Options`]: [`server_with`] takes others.
pub async fn server(
    listener: TcpListener,
    to: String,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    server_with(listener, to, tls, Options::default(), shutdown).await
}

/// [`server`] with `options`.
pub async fn server_with(
    listener: TcpListener,
    to: String,
    tls: Option<TlsAcceptor>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let config = options.session_config();
    let mut shutdown = pin!(shutdown);
    let mut sessions: Vec<Session> = Vec::new();
    // Handshakes run in their own tasks, so a slow client cannot hold up the others; dropping the
    // set at shutdown cancels those still running.
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.as_mut() => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("tunnel server: accept failed: {e}");
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                match &tls {
                    None => sessions.push(serve(tcp.compat(), &to, peer.to_string(), &config)),
                    Some(acceptor) => {
                        let handshake = acceptor.accept(tcp.compat());
                        handshakes.spawn(async move {
                            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await;
                            (peer, tls)
                        });
                    }
                }
            }
            Some(done) = handshakes.join_next(), if !handshakes.is_empty() => match done {
                Ok((peer, Ok(Ok(tls)))) => {
                    sessions.push(serve(tls, &to, peer.to_string(), &config));
                }
                Ok((peer, Ok(Err(e)))) => {
                    eprintln!("tunnel server: TLS handshake with {peer} failed: {e}");
                }
                Ok((peer, Err(_))) => eprintln!(
                    "tunnel server: TLS handshake with {peer} timed out after {HANDSHAKE_TIMEOUT:?}"
                ),
                Err(e) => eprintln!("tunnel server: TLS handshake task failed: {e}"),
            },
        }
        sessions.retain(|s| !s.is_closed());
    }
    drop(handshakes);
    for s in sessions {
        let _ = s.close().await;
    }
    Ok(())
}

/// Runs the server end of a session over `io` (TCP or TLS): every stream it accepts is forwarded
/// to a new TCP connection to `to`.
fn serve<T>(io: T, to: &str, peer: String, config: &Config) -> Session
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (session, driver) = Session::server(io, config.clone());
    let watched = session.clone();
    tokio::spawn(async move {
        if let Err(e) = driver.await {
            eprintln!(
                "tunnel server: {}",
                lost(&format!("session with {peer}"), &watched, &e)
            );
        }
    });
    let (to, streams) = (to.to_string(), session.clone());
    tokio::spawn(async move {
        while let Ok(stream) = streams.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                match TcpStream::connect(&to).await {
                    Ok(tcp) => {
                        let _ = forward(tcp, stream).await;
                    }
                    // Dropping the stream closes it: the client's local connection ends.
                    Err(e) => eprintln!("tunnel server: cannot reach {to}: {e}"),
                }
            });
        }
    });
    session
}

/// The tunnel's client end: keeps `connections` sessions to the tunnel server at `server` (over
/// TLS if `tls` is given) in a [`Pool`], and forwards every connection accepted on `listener` as
/// one stream, on the least loaded session. Runs until `shutdown` resolves, then lets the open
/// connections finish for up to [`SHUTDOWN_GRACE`] and closes the sessions.
///
/// Fails at once if the server cannot be reached at start or the TLS handshake fails (for
/// example, the server's certificate is not trusted): a mistake in the command line shows
/// itself. Once running, a lost session (the server restarted, the network failed) is replaced,
/// with backoff while the server stays away; a local connection made meanwhile waits up to
/// [`OPEN_TIMEOUT`] for a session. A lost session is reported with its cause and the streams it
/// carried. The sessions run with the default [`Options`]: [`client_with`] takes others.
pub async fn client(
    listener: TcpListener,
    server: String,
    tls: Option<ClientTls>,
    connections: usize,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    client_with(
        listener,
        server,
        tls,
        connections,
        Options::default(),
        shutdown,
    )
    .await
}

/// [`client`] with `options`.
pub async fn client_with(
    listener: TcpListener,
    server: String,
    tls: Option<ClientTls>,
    connections: usize,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let connect = {
        let server = server.clone();
        move || connect(server.clone(), tls.clone())
    };
    let lost_session = {
        let server = server.clone();
        move |session: &Session, result: &Result<(), ysmux::Error>| {
            if let Err(e) = result {
                let what = format!("lost a session with tunnel server {server}");
                eprintln!("tunnel client: {}", lost(&what, session, e));
            }
        }
    };
    let config = PoolConfig::new(tokio_sleep())
        .with_sessions(connections, connections)
        .with_session_config(options.session_config())
        .with_backoff(Duration::from_millis(100), Duration::from_secs(5))
        .with_on_session_end(Arc::new(lost_session));
    let (pool, driver) = Pool::new(connect, config);
    let driver = tokio::spawn(driver);
    // At start, an unreachable server is a mistake to report, not an outage to wait out.
    if let Err(e) = pool.connected().await {
        driver.abort();
        return Err(e.into());
    }

    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = shutdown.as_mut() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                eprintln!("tunnel client: accept failed: {e}");
                continue;
            }
        };
        let pool = pool.clone();
        let server = server.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(OPEN_TIMEOUT, pool.open()).await {
                Ok(Ok(stream)) => {
                    let _ = forward(tcp, stream).await;
                }
                Ok(Err(e)) => eprintln!("tunnel client: cannot open a stream: {e}"),
                Err(_) => eprintln!(
                    "tunnel client: no session with tunnel server {server} for \
                     {OPEN_TIMEOUT:?}: dropped a connection ({})",
                    pool.connected()
                        .now_or_never()
                        .and_then(Result::err)
                        .map_or("reconnecting".to_string(), |e| e.to_string())
                ),
            }
        });
    }
    pool.shutdown(tokio::time::sleep(SHUTDOWN_GRACE))
        .await
        .map_err(io::Error::from)?;
    driver
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::from)
}

/// One transport to the tunnel server: TCP, and TLS over it if `tls` is given. The error says
/// which step failed and for which server.
async fn connect(server: String, tls: Option<ClientTls>) -> io::Result<Transport> {
    let tcp = TcpStream::connect(&server).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot reach tunnel server {server}: {e}"),
        )
    })?;
    let _ = tcp.set_nodelay(true);
    Ok(match tls {
        None => Box::new(tcp.compat()),
        Some(tls) => Box::new(tls.handshake(tcp, &server).await?),
    })
}

/// A transport of the tunnel: TCP or TLS over TCP.
type Transport = Box<dyn Io>;

/// What a session needs of a transport.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What to report of a session that ended with `error`: `what` (which session), the error and
/// its causes, and the streams it carried.
pub fn lost(what: &str, session: &Session, error: &ysmux::Error) -> String {
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let said = e.to_string();
        if !cause.contains(&said) {
            cause.push_str(": ");
            cause.push_str(&said);
        }
        source = e.source();
    }
    let stats = session.stats();
    let carried = stats.streams_opened + stats.streams_accepted;
    format!(
        "{what} failed: {cause} (it carried {carried} stream{}; those still open were reset)",
        if carried == 1 { "" } else { "s" }
    )
}

/// Copies both ways between a TCP connection and a stream until either direction ends, then
/// closes both. A direction that ended cleanly (end-of-stream) closes the TCP connection with a
/// FIN and the stream with its FIN; one that failed (the stream's session died, or the TCP
/// connection was reset) resets the TCP connection (RST), so that its application sees an error
/// and never takes a truncated transfer for a whole one. Returns how it ended.
pub async fn forward(tcp: TcpStream, stream: Stream) -> io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let (tcp_read, tcp_write) = tcp.into_split();
    let (mut tcp_read, mut tcp_write) = (tcp_read.compat(), tcp_write.compat_write());
    let (mut stream_read, mut stream_write) = stream.split();
    let up = async {
        futures::io::copy(&mut tcp_read, &mut stream_write).await?;
        stream_write.close().await // flushes, then FIN
    };
    let down = async {
        futures::io::copy(&mut stream_read, &mut tcp_write).await?;
        tcp_write.close().await // FIN
    };
    let result = match select(pin!(up), pin!(down)).await {
        Either::Left((r, _)) | Either::Right((r, _)) => r,
    };
    if result.is_err() {
        // Closing a socket with SO_LINGER 0 resets it: the application hears of the failure.
        // Whole again first: a write half dropped alone would send a FIN before the reset.
        if let Ok(tcp) = tcp_read.into_inner().reunite(tcp_write.into_inner()) {
            let _ = tcp.set_zero_linger();
        }
    }
    result
}

// ----- TLS -----

/// The client end's TLS: whom it trusts, and the name the server's certificate must carry.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl ClientTls {
    /// Trusts the certificates in the PEM file `ca` (the server's own self-signed certificate, or
    /// the CA that issued it), and expects the server's certificate to be valid for `name` (a DNS
    /// name or an IP address).
    pub fn load(ca: &Path, name: &str) -> io::Result<ClientTls> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca)? {
            roots.add(cert).map_err(|e| {
                invalid(format!(
                    "{}: not a usable CA certificate: {e}",
                    ca.display()
                ))
            })?;
        }
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| invalid(format!("invalid TLS server name {name:?}: {e}")))?;
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The TLS handshake with the tunnel server at `server`, bounded by [`HANDSHAKE_TIMEOUT`].
    async fn handshake(
        &self,
        tcp: TcpStream,
        server: &str,
    ) -> io::Result<futures_rustls::client::TlsStream<tokio_util::compat::Compat<TcpStream>>> {
        let name = self.name.to_str();
        let handshake = self.connector.connect(self.name.clone(), tcp.compat());
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => {
                use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
                let hint = match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                    Some(rustls::Error::InvalidCertificate(
                        NotValidForName | NotValidForNameContext { .. },
                    )) => " (--tls-name must be a name the server's certificate is valid for)",
                    Some(rustls::Error::InvalidCertificate(_)) => {
                        " (the server's certificate is not trusted: is --tls-ca the certificate \
                         the server uses, or the CA that issued it?)"
                    }
                    _ if e.kind() == io::ErrorKind::UnexpectedEof => {
                        " (the server closed the connection: does it use TLS?)"
                    }
                    _ => "",
                };
                Err(io::Error::new(
                    e.kind(),
                    format!(
                        "TLS handshake with tunnel server {server} as {name:?} failed: {e}{hint}"
                    ),
                ))
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "TLS handshake with tunnel server {server} timed out after \
                     {HANDSHAKE_TIMEOUT:?}"
                ),
            )),
        }
    }
}

/// The server end's TLS: presents the certificate chain in the PEM file `cert` with the private
/// key in the PEM file `key`.
pub fn load_server_tls(cert: &Path, key: &Path) -> io::Result<TlsAcceptor> {
    let certs = read_certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(format!(
            "{}: no private key found (expected a PEM \"PRIVATE KEY\" block)",
            key.display()
        )),
        e => invalid(format!("{}: invalid PEM: {e}", key.display())),
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            invalid(format!(
                "cannot use certificate {} with key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Makes a self-signed certificate valid for `names` (DNS names or IP addresses) and writes it to
/// `dir/cert.pem`, its private key to `dir/key.pem` (creating `dir` if needed). Returns both
/// paths. For trying the tunnel out: the client trusts `cert.pem` with `--tls-ca`.
pub fn generate_cert(dir: &Path, names: &[String]) -> io::Result<(PathBuf, PathBuf)> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| invalid(format!("cannot make a certificate for {names:?}: {e}")))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    write(&cert, certified.cert.pem().as_bytes(), false)?;
    write(&key, certified.signing_key.serialize_pem().as_bytes(), true)?;
    Ok((cert, key))
}

/// The host part of `host:port` (without an IPv6 address's brackets): the name the client expects
/// in the server's certificate unless told otherwise.
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
}

/// Every certificate in the PEM file at `path`; at least one.
fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{}: invalid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{}: no certificate found (expected a PEM \"CERTIFICATE\" block)",
            path.display()
        )));
    }
    Ok(certs)
}

/// Writes a new file (replacing an old one), readable by its owner only if `private`.
fn write(path: &Path, contents: &[u8], private: bool) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
}
