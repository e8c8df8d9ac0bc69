//! Interoperation with the original Go implementation, both versions users have
//! (shared/peers/README.md): commit 0519644, the one the founding document describes, and commit
//! 77536ae, the newest (docs/PROTOCOL.md 10: PIN keepalives, stream id 0), over loopback TCP, in
//! both directions: their client programs against our server sessions, and our client sessions
//! against their server programs.
//!
//! - probe: `is_smux` on their server, their `issmux` on ours;
//! - bulk data with 1, 16 and 256 streams: echoed and every byte checked against 0519644; the sink
//!   protocol against 77536ae, which corrupts echoed data on its own (peers/README.md);
//! - churn: 20,000 open/move/close cycles each way (ours move 300 KiB per cycle, 8 workers);
//! - idle sessions: with PIN (77536ae with its timers shortened: PIN every 200 ms, closed after
//!   2 s without one), without (0519644 closes a session on a PIN: we must never send one first),
//!   and with our VRM keepalive, which both versions must answer;
//! - ignored by default, sessions idle for 110 s against the real 77536ae (its PIN timeout is
//!   100 s), run with `cargo test --test interop -- --ignored`.
//!
//! The Go programs are found through `SMUX_PEERS`, a folder holding `original-0519644`,
//! `original-77536ae` and `original-77536ae-fastping`, or else in the project's sibling
//! `../shared/peers`, where the project keeps them; so plain `cargo test` runs these tests:
//!
//! ```sh
//! cargo test --test interop -- --nocapture
//! ```
//!
//! Where the run must not skip (`SMUX_PEERS` set, `CI` set, as in `.ci/run`) a missing program
//! fails the test, saying where it looked. On a clone without `../shared/peers` and with neither
//! variable set, each test writes one `SKIPPED interop test ...` line and passes. Every process
//! a test starts is killed when the test ends, however it ends; every wait is bounded. The heavy
//! tests run one at a time ([`SERIAL`]); each test prints its figures (the Go clients' result
//! lines, our MiB/s and cycles/s), which `--nocapture` shows.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::ours::{OurServer, Recording, Sent, Service};
use common::peers::{GoServer, Original, Peers};
use common::sink;
use common::*;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use smol::future::FutureExt;
use smol::{Executor, Timer};
use ysmux::{Config, Error, Session, Stream};

/// The heavy tests take it, so that they never run at once (the machine has 2 cores).
static SERIAL: Mutex<()> = Mutex::new(());

/// Cycles of every churn.
const CHURN_CYCLES: usize = 20_000;
/// Workers of our churn client.
const CHURN_WORKERS: usize = 8;
/// What one cycle of our churn client moves.
const CHURN_BYTES: usize = 300 * 1024;
/// The watchdog of the Go clients: past it they print `HANG` and exit 3.
const HARNESS_SECS: u64 = 120;
/// The bound of most tests.
const LIMIT: Duration = Duration::from_secs(150);
/// The bound of the 110 s idle tests.
const LONG_LIMIT: Duration = Duration::from_secs(200);

// ----- harness -----

/// Runs one interop test on its own smol executor, bounded by `limit`: finds the Go programs (or
/// says the test did not run and returns), and takes [`SERIAL`] if `serial` (the heavy tests, and
/// those whose timing a heavy one could upset).
fn interop<F, Fut>(serial: bool, limit: Duration, test: F)
where
    F: FnOnce(Ex, Peers) -> Fut,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::current();
    let Some(peers) = Peers::find(thread.name().unwrap_or("interop")) else {
        return;
    };
    let _serial = serial.then(|| lock(&SERIAL));
    let ex = Arc::new(Executor::new());
    let fut = test(Ex::Smol(ex.clone()), peers);
    smol::block_on(ex.run(within(limit, "the whole interop test", fut)));
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Awaits `fut` for at most `limit`; past it, an error saying what timed out.
async fn deadline<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, String> {
    async { Ok(fut.await) }
        .or(async {
            Timer::after(limit).await;
            Err(format!("timed out after {limit:?}: {what}"))
        })
        .await
}

fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / secs.max(1e-9)
}

/// Our keepalive: a VRM probe after 100 ms without a frame from the peer.
fn keepalive() -> Config {
    Config::default().with_keepalive(
        Duration::from_millis(100),
        Arc::new(|d| {
            Box::pin(async move {
                Timer::after(d).await;
            })
        }),
    )
}

/// How our session ended, or that it is still running.
async fn session_end(driver: &mut Task<Result<(), Error>>) -> String {
    if driver.is_finished() {
        format!("ended with {:?}", driver.await)
    } else {
        "still running".into()
    }
}

/// Panics if our session has ended, saying how.
async fn assert_alive(driver: &mut Task<Result<(), Error>>, what: &str) {
    if driver.is_finished() {
        panic!("{what}: our session {}", session_end(driver).await);
    }
}

/// How many VRM and PIN frames are in what our side sent.
fn vrm_and_pin(sent: &Sent) -> (usize, usize) {
    let frames = parse_frames(&lock(sent));
    let n = |cmd| frames.iter().filter(|f| f.cmd == cmd).count();
    (n(VRM), n(PIN))
}

// ----- our side -----

/// VRM and PIN frames the sessions of a recording server sent.
fn server_vrm_and_pin(ours: &OurServer) -> (usize, usize) {
    ours.sent()
        .iter()
        .map(vrm_and_pin)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// Our client session (with `config`) connected to a Go server, its driver running; what it
/// sends is kept in `sent`, if given.
async fn connect(
    ex: &Ex,
    server: &GoServer,
    config: Config,
    sent: Option<Sent>,
) -> (Session, Task<Result<(), Error>>) {
    let tcp = wait(
        "connecting to the Go server",
        smol::net::TcpStream::connect(server.addr),
    )
    .await
    .expect("connect to the Go server");
    tcp.set_nodelay(true).expect("nodelay");
    let (session, driver) = Session::client(Recording { io: tcp, sent }, config);
    (session, ex.spawn(driver))
}

// ----- each kind of test, for any version -----

/// `is_smux` on a raw connection to their echo-server says true.
async fn is_smux_of_theirs(peers: Peers, version: Original) {
    let server = peers.server(version, "echo-server").await;
    let mut tcp = wait("connect", smol::net::TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let yes = wait("is_smux", ysmux::is_smux(&mut tcp))
        .await
        .expect("is_smux");
    eprintln!("is_smux of {} echo-server: {yes}", version.program());
    assert!(yes, "is_smux said false of {}", version.program());
}

/// Their `issmux` against our server prints `true`.
async fn their_issmux(ex: Ex, peers: Peers, version: Original) {
    let ours = OurServer::start(&ex, Config::default(), Service::Echo, false).await;
    let line = peers
        .client(version, &["issmux", &ours.addr()], 30, || ours.report())
        .await;
    assert_eq!(
        line,
        "true",
        "their issmux of our server; {}",
        ours.report()
    );
}

/// Their client `command` (`echo-check` against our echo server, `bench-client` against our
/// sink server) with `streams` streams moving `mb` MiB in all.
async fn their_bulk(ex: Ex, peers: Peers, version: Original, command: &str, streams: u32, mb: u32) {
    let service = match command {
        "echo-check" => Service::Echo,
        _ => Service::Sink,
    };
    let ours = OurServer::start(&ex, Config::default(), service, false).await;
    let (s, m) = (streams.to_string(), mb.to_string());
    let line = peers
        .client(
            version,
            &[command, &ours.addr(), &s, &m],
            HARNESS_SECS,
            || ours.report(),
        )
        .await;
    assert!(
        line.starts_with("yddeng") && line.contains(&format!("streams={streams} MB={mb} ")),
        "their result line: {line:?}; {}",
        ours.report()
    );
    if service == Service::Echo {
        assert!(line.ends_with(" ok"), "{line}; {}", ours.report());
    }
}

/// Our client against their echo-server: `streams` streams at once, each writing `per_stream`
/// bytes of its own pattern while it reads the echo back, every byte checked.
async fn our_echo(ex: Ex, peers: Peers, version: Original, streams: u64, per_stream: u64) {
    let mut server = peers.server(version, "echo-server").await;
    let (session, mut driver) = connect(&ex, &server, Config::default(), None).await;
    let secs = echo_through(&ex, &session, streams, per_stream, 1000).await;
    let total = streams * per_stream;
    eprintln!(
        "our echo client vs {} echo-server: streams={streams} MiB={} secs={secs:.3} MiBps={:.1} ok",
        version.program(),
        total >> 20,
        mib_per_s(total, secs)
    );
    assert_alive(&mut driver, "after the echo").await;
    assert_base_protocol(&session, version);
    server.assert_running();
}

/// Against the original, window growth stays off: the wire is docs/PROTOCOL.md 2-10 only.
fn assert_base_protocol(session: &Session, version: Original) {
    let stats = session.stats();
    assert!(
        !stats.windows_grow && stats.window_growth == 0,
        "window growth against {}: {stats:?}",
        version.program()
    );
}

/// Our client against their sink-server: `streams` streams at once, each writing `per_stream`
/// bytes, then waiting for the 0x01.
async fn our_sink(ex: Ex, peers: Peers, version: Original, streams: u64, per_stream: u64) {
    let mut server = peers.server(version, "sink-server").await;
    let (session, mut driver) = connect(&ex, &server, Config::default(), None).await;
    let secs = sink_through(&ex, &session, streams, per_stream).await;
    let total = streams * per_stream;
    eprintln!(
        "our sink client vs {} sink-server: streams={streams} MiB={} secs={secs:.3} MiBps={:.1} ok",
        version.program(),
        total >> 20,
        mib_per_s(total, secs)
    );
    assert_alive(&mut driver, "after the sink").await;
    assert_base_protocol(&session, version);
    server.assert_running();
}

/// Their `churn-client ADDR 20000` (8 workers, 4 KiB echoed per cycle) against our echo server.
async fn their_churn(ex: Ex, peers: Peers, version: Original) {
    let ours = OurServer::start(&ex, Config::default(), Service::Echo, false).await;
    let cycles = CHURN_CYCLES.to_string();
    let line = peers
        .client(
            version,
            &["churn-client", &ours.addr(), &cycles],
            HARNESS_SECS,
            || ours.report(),
        )
        .await;
    assert!(
        line.contains(&format!("cycles={CHURN_CYCLES} ")) && line.ends_with(" ok"),
        "{line}; {}",
        ours.report()
    );
}

/// Our churn client against their server (echo-server for [`Service::Echo`], sink-server for
/// [`Service::Sink`]): [`CHURN_WORKERS`] workers share [`CHURN_CYCLES`] cycles of: open a stream,
/// move [`CHURN_BYTES`] (echoed and every byte checked, or the sink protocol), close it.
async fn our_churn(ex: Ex, peers: Peers, version: Original, service: Service) {
    let command = match service {
        Service::Echo => "echo-server",
        Service::Sink => "sink-server",
    };
    let mut server = peers.server(version, command).await;
    let (session, mut driver) = connect(&ex, &server, Config::default(), None).await;
    // Consecutive cycles move different data, so data of an earlier stream shows in a later one.
    let patterns: Arc<Vec<Vec<u8>>> =
        Arc::new((0..16).map(|k| pattern(100 + k, CHURN_BYTES)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let start = Instant::now();
    let workers: Vec<_> = (0..CHURN_WORKERS)
        .map(|worker| {
            let (session, patterns) = (session.clone(), patterns.clone());
            let (next, done, failure) = (next.clone(), done.clone(), failure.clone());
            ex.spawn(async move {
                let mut buf = vec![0u8; CHURN_BYTES];
                while lock(&failure).is_none() {
                    let cycle = next.fetch_add(1, Ordering::Relaxed);
                    if cycle >= CHURN_CYCLES {
                        return;
                    }
                    let data = &patterns[cycle % patterns.len()];
                    let cycle_done = churn_cycle(&session, service, data, &mut buf);
                    if let Err(e) = deadline(WAIT, "one cycle", cycle_done)
                        .await
                        .and_then(|r| r)
                    {
                        lock(&failure).get_or_insert(format!(
                            "cycle {cycle} (worker {worker}, t={:.2}s): {e}",
                            start.elapsed().as_secs_f64()
                        ));
                        return;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    within(
        LIMIT - Duration::from_secs(10),
        "the churn workers",
        async {
            for w in workers {
                w.await;
            }
        },
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    let cycles = done.load(Ordering::Relaxed);
    let failure = lock(&failure).take();
    if let Some(f) = failure {
        panic!(
            "our churn client vs {} {command}: {f}; {cycles} cycles completed; our session {}",
            version.program(),
            session_end(&mut driver).await
        );
    }
    eprintln!(
        "our churn client vs {} {command}: cycles={cycles} KiB_per_cycle={} secs={secs:.3} \
         cycles_per_s={:.0} ok",
        version.program(),
        CHURN_BYTES >> 10,
        cycles as f64 / secs
    );
    assert_alive(&mut driver, "after the churn").await;
    server.assert_running();
}

/// One churn cycle: open, move `data`, close.
async fn churn_cycle(
    session: &Session,
    service: Service,
    data: &[u8],
    buf: &mut [u8],
) -> Result<(), String> {
    let mut s = session.open().await.map_err(|e| format!("open: {e}"))?;
    let id = s.id();
    match service {
        Service::Echo => {
            // Both windows hold the whole cycle: write it all, then read the echo.
            s.write_all(data)
                .await
                .map_err(|e| format!("stream {id}: write: {e}"))?;
            let mut off = 0;
            while off < data.len() {
                match s.read(&mut buf[off..data.len()]).await {
                    Ok(0) => {
                        return Err(format!(
                            "stream {id}: end-of-stream after {off} of {} bytes",
                            data.len()
                        ))
                    }
                    Ok(n) => off += n,
                    Err(e) => return Err(format!("stream {id}: read at {off}: {e}")),
                }
            }
            if buf[..data.len()] != *data {
                let at = buf.iter().zip(data).position(|(a, b)| a != b);
                return Err(format!("stream {id}: the echo differs at byte {at:?}"));
            }
        }
        Service::Sink => sink::request(&mut s, data.len(), data)
            .await
            .map_err(|e| format!("stream {id}: {e}"))?,
    }
    s.close()
        .await
        .map_err(|e| format!("stream {id}: close: {e}"))
}

/// Their `idle-client ADDR SECONDS` against our echo server prints `... ok`. Against 0519644 our
/// server must have sent no PIN.
async fn their_idle(ex: Ex, peers: Peers, version: Original, secs: u64) {
    let ours = OurServer::start(&ex, Config::default(), Service::Echo, true).await;
    let s = secs.to_string();
    let line = peers
        .client(
            version,
            &["idle-client", &ours.addr(), &s],
            HARNESS_SECS.max(secs + 60),
            || ours.report(),
        )
        .await;
    assert!(line.ends_with(" ok"), "{line}; {}", ours.report());
    let (vrm, pin) = server_vrm_and_pin(&ours);
    eprintln!("our server sent {vrm} VRM and {pin} PIN frames");
    if version == Original::V0519644 {
        assert_eq!(pin, 0, "our server sent PIN to {}", version.program());
    }
}

/// Echoes 1 KiB of the pattern `seed` on `s` and checks it.
async fn echo_1k(s: &mut Stream, seed: u64, what: &str) -> Result<(), String> {
    let data = pattern(seed, 1024);
    let mut back = vec![0u8; data.len()];
    let round = async {
        s.write_all(&data)
            .await
            .map_err(|e| format!("{what}: write: {e}"))?;
        s.read_exact(&mut back)
            .await
            .map_err(|e| format!("{what}: read: {e}"))
    };
    deadline(WAIT, what, round).await.and_then(|r| r)?;
    if back != data {
        return Err(format!("{what}: the echo differs"));
    }
    Ok(())
}

/// Our client session (with `config`) against their echo-server: echo 1 KiB on stream A, stay
/// idle for `idle`, then echo 1 KiB on A and on a new stream B. Against 0519644 it must have sent
/// no PIN; with a keepalive, its VRM probes (at least one per 4 intervals of the idle time).
async fn our_idle(ex: Ex, peers: Peers, version: Original, idle: Duration, config: Config) {
    let keepalive = config.keepalive_interval();
    let mut server = peers.server(version, "echo-server").await;
    let sent = Sent::default();
    let (session, mut driver) = connect(&ex, &server, config, Some(sent.clone())).await;
    let start = Instant::now();
    let r = async {
        let mut a = deadline(WAIT, "open A", session.open())
            .await?
            .map_err(|e| format!("open A: {e}"))?;
        echo_1k(&mut a, 1, "echo on A before the idle time").await?;
        // Idle, but say at once if the session ends meanwhile.
        let ended = async { Some(session.closed().await) };
        let idled = async {
            Timer::after(idle).await;
            None
        };
        if let Some(end) = ended.or(idled).await {
            return Err(format!("the session ended during the idle time: {end:?}"));
        }
        echo_1k(&mut a, 2, "echo on A after the idle time").await?;
        let mut b = deadline(WAIT, "open B", session.open())
            .await?
            .map_err(|e| format!("open B after the idle time: {e}"))?;
        echo_1k(&mut b, 3, "echo on B after the idle time").await
    }
    .await;
    if let Err(e) = r {
        panic!(
            "our idle client vs {}: {e} (t={:.2}s); our session {}",
            version.program(),
            start.elapsed().as_secs_f64(),
            session_end(&mut driver).await
        );
    }
    let (vrm, pin) = vrm_and_pin(&sent);
    eprintln!(
        "our idle client vs {}: idle {idle:?}, keepalive {keepalive:?}, sent {vrm} VRM and \
         {pin} PIN frames: ok",
        version.program()
    );
    assert_alive(&mut driver, "after the idle time").await;
    server.assert_running();
    if version == Original::V0519644 {
        assert_eq!(pin, 0, "our client sent PIN to {}", version.program());
    }
    if let Some(interval) = keepalive {
        let least = (idle.as_millis() / (4 * interval.as_millis())) as usize;
        assert!(
            vrm >= least,
            "our keepalive sent {vrm} VRM probes in {idle:?} (interval {interval:?})"
        );
    }
}

// ----- the tests, by version -----

/// Commit 0519644, the version the founding document describes (docs/PROTOCOL.md 1-8).
mod v0519644 {
    use super::*;

    const V: Original = Original::V0519644;

    #[test]
    fn is_smux_true_of_their_server() {
        interop(false, WAIT, |_, p| is_smux_of_theirs(p, V));
    }

    #[test]
    fn their_issmux_true_of_our_server() {
        interop(false, WAIT, |ex, p| their_issmux(ex, p, V));
    }

    #[test]
    fn their_echo_check_1_stream() {
        interop(true, LIMIT, |ex, p| {
            their_bulk(ex, p, V, "echo-check", 1, 64)
        });
    }

    #[test]
    fn their_echo_check_16_streams() {
        interop(true, LIMIT, |ex, p| {
            their_bulk(ex, p, V, "echo-check", 16, 64)
        });
    }

    #[test]
    fn their_echo_check_256_streams() {
        interop(true, LIMIT, |ex, p| {
            their_bulk(ex, p, V, "echo-check", 256, 256)
        });
    }

    #[test]
    fn our_echo_1_stream() {
        interop(true, LIMIT, |ex, p| our_echo(ex, p, V, 1, 64 << 20));
    }

    #[test]
    fn our_echo_16_streams() {
        interop(true, LIMIT, |ex, p| our_echo(ex, p, V, 16, 4 << 20));
    }

    #[test]
    fn our_echo_256_streams() {
        interop(true, LIMIT, |ex, p| our_echo(ex, p, V, 256, 1 << 20));
    }

    #[test]
    fn their_churn_client() {
        interop(true, LIMIT, |ex, p| their_churn(ex, p, V));
    }

    /// It sends frames for a stream after its FIN answer (docs/PROTOCOL.md 9): they must never
    /// reach a newer stream that reuses the id.
    #[test]
    fn our_churn_client_echo_300k() {
        interop(true, LIMIT, |ex, p| our_churn(ex, p, V, Service::Echo));
    }

    /// It sends no PIN and closes a session on receiving one: we must never send PIN first.
    #[test]
    fn their_idle_client_3s() {
        interop(false, LIMIT, |ex, p| their_idle(ex, p, V, 3));
    }

    /// As `their_idle_client_3s`, the other way.
    #[test]
    fn our_idle_client_3s() {
        interop(false, LIMIT, |ex, p| {
            our_idle(ex, p, V, Duration::from_secs(3), Config::default())
        });
    }

    /// Our keepalive's VRM probes are answered: the session outlives 2 s of idle probing.
    #[test]
    fn our_keepalive_vrm_answered() {
        interop(true, LIMIT, |ex, p| {
            our_idle(ex, p, V, Duration::from_secs(2), keepalive())
        });
    }
}

/// Commit 77536ae, the newest (docs/PROTOCOL.md 10): its first stream is id 0, it sends PIN. It
/// corrupts echoed data on its own, so bulk data goes through the sink protocol.
mod v77536ae {
    use super::*;

    const V: Original = Original::V77536ae;
    /// PIN every 200 ms, a session closed after 2 s without a PIN.
    const FAST: Original = Original::V77536aeFastping;

    #[test]
    fn is_smux_true_of_their_server() {
        interop(false, WAIT, |_, p| is_smux_of_theirs(p, V));
    }

    #[test]
    fn their_issmux_true_of_our_server() {
        interop(false, WAIT, |ex, p| their_issmux(ex, p, V));
    }

    #[test]
    fn their_bench_client_1_stream() {
        interop(true, LIMIT, |ex, p| {
            their_bulk(ex, p, V, "bench-client", 1, 64)
        });
    }

    #[test]
    fn their_bench_client_16_streams() {
        interop(true, LIMIT, |ex, p| {
            their_bulk(ex, p, V, "bench-client", 16, 64)
        });
    }

    #[test]
    fn their_bench_client_256_streams() {
        interop(true, LIMIT, |ex, p| {
            their_bulk(ex, p, V, "bench-client", 256, 256)
        });
    }

    #[test]
    fn our_sink_client_1_stream() {
        interop(true, LIMIT, |ex, p| our_sink(ex, p, V, 1, 64 << 20));
    }

    #[test]
    fn our_sink_client_16_streams() {
        interop(true, LIMIT, |ex, p| our_sink(ex, p, V, 16, 4 << 20));
    }

    #[test]
    fn our_sink_client_256_streams() {
        interop(true, LIMIT, |ex, p| our_sink(ex, p, V, 256, 1 << 20));
    }

    #[test]
    fn their_churn_client() {
        interop(true, LIMIT, |ex, p| their_churn(ex, p, V));
    }

    #[test]
    fn our_churn_client_sink_300k() {
        interop(true, LIMIT, |ex, p| our_churn(ex, p, V, Service::Sink));
    }

    /// The fast-PIN build closes a session after 2 s without a PIN: we must send them.
    #[test]
    fn their_idle_client_5s_with_pin() {
        interop(false, LIMIT, |ex, p| their_idle(ex, p, FAST, 5));
    }

    /// As `their_idle_client_5s_with_pin`, the other way.
    #[test]
    fn our_idle_client_5s_with_pin() {
        interop(false, LIMIT, |ex, p| {
            our_idle(ex, p, FAST, Duration::from_secs(5), Config::default())
        });
    }

    /// Our keepalive's VRM probes are answered: the session outlives 2 s of idle probing.
    #[test]
    fn our_keepalive_vrm_answered() {
        interop(true, LIMIT, |ex, p| {
            our_idle(ex, p, V, Duration::from_secs(2), keepalive())
        });
    }

    /// Past its real 100 s PIN timeout. Ignored by default (110 s); run it with
    /// `cargo test --test interop -- --ignored`.
    #[test]
    #[ignore = "idle 110 s: cargo test --test interop -- --ignored"]
    fn their_idle_client_110s_with_pin() {
        interop(false, LONG_LIMIT, |ex, p| their_idle(ex, p, V, 110));
    }

    /// Past its real 100 s PIN timeout. Ignored by default (110 s); run it with
    /// `cargo test --test interop -- --ignored`.
    #[test]
    #[ignore = "idle 110 s: cargo test --test interop -- --ignored"]
    fn our_idle_client_110s_with_pin() {
        interop(false, LONG_LIMIT, |ex, p| {
            our_idle(ex, p, V, Duration::from_secs(110), Config::default())
        });
    }
}
