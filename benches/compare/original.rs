//! The Go original (the programs of shared/peers) as the peer through the link: one stream, in
//! each direction, against a session of this crate with its defaults. Against the original nothing
//! is negotiated, so this is the protocol's bound with the real other end: at most one 512 KiB
//! window per round trip.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::AsyncWriteExt;

use crate::link::{Link, Shape};
use crate::rt::{self, Net, NetKind, Rt, RtKind, Spawner};
use crate::sink;

/// The version measured: the one the founding document describes.
pub const VERSION: &str = "original-0519644";

/// The original's program: in `SMUX_PEERS`, as the tests find it, or else in the project's sibling
/// `shared/peers`.
fn program() -> Result<PathBuf, String> {
    let dir = std::env::var_os("SMUX_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers"));
    let p = dir.join(VERSION);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{} not found (SMUX_PEERS)", p.display()))
    }
}

/// A program this bench started; dropped, it is killed through its handle (its own id) and reaped.
struct Started(Child);

impl Started {
    fn spawn(args: &[&str], timeout: Duration) -> Result<Started, String> {
        Command::new(program()?)
            .args(args)
            .env("HARNESS_TIMEOUT", timeout.as_secs().max(1).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map(Started)
            .map_err(|e| format!("starting {VERSION}: {e}"))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The original's `bench-client` sends `bytes` on one stream through the link to a session of this
/// crate serving the sink protocol: bytes per second, as the client times them.
pub fn original_sends(
    rtk: RtKind,
    shape: Shape,
    bytes: u64,
    timeout: Duration,
) -> Result<f64, String> {
    let rt = Rt::new(rtk);
    let sp = rt.spawner();
    rt.run(async move {
        let net = Net::new(NetKind::Tcp, rtk)
            .await
            .map_err(|e| format!("listening: {e}"))?;
        let link = Link::start(shape, net.addr().expect("a TCP net"))
            .map_err(|e| format!("the link: {e}"))?;
        let mib = bytes.div_ceil(1 << 20).to_string();
        let mut client = Started::spawn(
            &["bench-client", &link.addr().to_string(), "1", &mib],
            timeout,
        )?;
        let conn = sp
            .timeout(timeout, net.accept())
            .await
            .ok_or("the original never connected")?
            .map_err(|e| format!("accepting: {e}"))?;
        let (session, driver) = ysmux::Session::server(conn.fio(), ysmux::Config::default());
        sp.detach(async move {
            let _ = driver.await;
        });
        let _served = sp.spawn(async move {
            if let Ok(mut s) = session.accept().await {
                let _ = sink::serve(&mut s).await;
            }
        });
        let out = wait(&sp, &mut client, timeout).await?;
        let mibps: f64 = field(&out, "MiBps=").ok_or_else(|| format!("no rate in {out:?}"))?;
        Ok(mibps * f64::from(1u32 << 20))
    })
}

/// A session of this crate sends `bytes` on one stream through the link to the original's
/// `sink-server`: bytes per second, from the open to the sink's answer.
pub fn original_receives(
    rtk: RtKind,
    shape: Shape,
    bytes: u64,
    timeout: Duration,
) -> Result<f64, String> {
    let addr = free_port().map_err(|e| format!("a free port: {e}"))?;
    let server = Started::spawn(&["sink-server", &addr.to_string()], timeout)?;
    wait_listening(addr)?;
    let rt = Rt::new(rtk);
    let sp = rt.spawner();
    let r = rt.run(async move {
        let link = Link::start(shape, addr).map_err(|e| format!("the link: {e}"))?;
        let conn = rt::connect(rtk, link.addr())
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let (session, driver) = ysmux::Session::client(conn.fio(), ysmux::Config::default());
        sp.detach(async move {
            let _ = driver.await;
        });
        let start = Instant::now();
        let sent = sp.timeout(timeout, async move {
            let mut s = session.open().await.map_err(|e| e.to_string())?;
            sink::request(&mut s, bytes as usize, &[0u8; 64 * 1024]).await?;
            let _ = s.close().await;
            Ok::<_, String>(())
        });
        match sent.await {
            Some(Ok(())) => Ok(bytes as f64 / start.elapsed().as_secs_f64()),
            Some(Err(e)) => Err(format!("sending to the original: {e}")),
            None => Err(format!("timed out after {} s", timeout.as_secs())),
        }
    });
    drop(server);
    r
}

/// Waits (polling, on the runtime's timer) until `p` exits, and returns what it printed.
async fn wait(sp: &Spawner, p: &mut Started, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let status = loop {
        match p.0.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                return Err(format!("timed out after {} s", timeout.as_secs()))
            }
            None => sp.sleep(Duration::from_millis(20)).await,
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = p.0.stdout.take() {
        let _ = io::Read::read_to_string(&mut o, &mut out);
    }
    if let Some(mut e) = p.0.stderr.take() {
        let _ = io::Read::read_to_string(&mut e, &mut err);
    }
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{VERSION} failed ({status}): {}", err.trim()))
    }
}

/// The number after `key` in a result line (`... MiBps=47.3`).
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.parse().ok())
}

fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Waits (up to 5 s) until something accepts on `addr`.
fn wait_listening(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{VERSION} sink-server never listened on {addr}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
