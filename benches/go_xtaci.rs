//! xtaci/smux's own Go program (shared/peers `xtaci-v1.5.57`) against this crate, on the same wire,
//! version 1 and 2, both ways: one stream's bulk rate, the round trip of a 64-byte echo, and
//! sequential churn (open, 4 KiB echo, close).
//! - The Go client against its own Go server and against a server of this crate, each figure as
//!   the Go client times it, so that both servers are measured by the same yardstick.
//! - The Go server with its own Go client and with a client of this crate doing what the Go
//!   client does (same sizes, same writes, every echo compared), each client timing itself the
//!   same way.
//!
//! ```sh
//! cargo bench -p ysmux-bench --bench go_xtaci     # about 4 minutes; needs shared/peers (SMUX_PEERS)
//! ```
//!
//! Environment: `SMUX_BENCH_RUNS` (3; medians), `SMUX_BENCH_BULK_MIB` (512), `SMUX_BENCH_ROUNDS`
//! (20,000 round trips and churn cycles), `SMUX_PEERS` (the folder of the Go programs, relative to
//! `benches/`), `SMUX_BENCH_OUT` (where `go_xtaci.md` goes; `target/smux-bench`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};
use ysmux::{Config, Protocol, Session};

#[path = "../tests/common/sink.rs"]
#[allow(dead_code)]
mod sink;

/// The Go version measured: the newest.
const GO: &str = "xtaci-v1.5.57";
/// A run's limit: the Go client's watchdog, and ours.
const TIMEOUT: Duration = Duration::from_secs(120);

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn program() -> Option<PathBuf> {
    let dir = std::env::var_os("SMUX_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers"));
    let p = dir.join(GO);
    p.is_file().then_some(p)
}

/// A process this bench started: killed through its own handle, and reaped, when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Go,
    Ours,
}

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Go,
    Ours,
}

#[derive(Clone, Copy)]
enum Job {
    Sink,
    Echo,
}

/// What a row measures; the client's arguments follow from it.
#[derive(Clone, Copy)]
enum Kind {
    /// One stream, the sink protocol, `mib` MiB in 32 KiB writes: MiB/s.
    Bulk,
    /// One stream, 64-byte echoes: the median round, µs.
    Rtt,
    /// Open, 4 KiB echoed and compared, close, in sequence: cycles/s.
    Churn,
}

impl Kind {
    fn job(self) -> Job {
        match self {
            Kind::Bulk => Job::Sink,
            Kind::Rtt | Kind::Churn => Job::Echo,
        }
    }
}

/// Starts a server of `who` for `job` on a free loopback port; the returned guard stops it (ours
/// runs in a thread of this process until the process ends).
fn start_server(
    who: Server,
    job: Job,
    version: u8,
    go: &PathBuf,
) -> Result<(SocketAddr, Option<Started>), String> {
    match who {
        Server::Go => {
            let addr = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("a free port: {e}"))?;
            let cmd = match job {
                Job::Sink => "sink-server",
                Job::Echo => "echo-server",
            };
            let child = Command::new(go)
                .args([cmd, &addr.to_string()])
                .env("XTACI_VERSION", version.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting {GO}: {e}"))?;
            let started = Started(child);
            let deadline = Instant::now() + Duration::from_secs(5);
            while TcpStream::connect(addr).is_err() {
                if Instant::now() > deadline {
                    return Err(format!("{GO} never listened on {addr}"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok((addr, Some(started)))
        }
        Server::Ours => {
            let listener =
                TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listening: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            std::thread::spawn(move || serve(listener, job, version));
            Ok((addr, None))
        }
    }
}

/// A server of this crate: every session speaks xtaci's wire `version`; every stream is sunk or
/// echoed.
fn protocol(version: u8) -> Protocol {
    if version == 1 {
        Protocol::Xtaci1
    } else {
        Protocol::Xtaci2
    }
}

fn serve(listener: TcpListener, job: Job, version: u8) {
    let protocol = protocol(version);
    let listener = smol::Async::new(listener).expect("a non-blocking listener");
    smol::block_on(async {
        while let Ok((conn, _)) = listener.accept().await {
            let _ = conn.get_ref().set_nodelay(true);
            let (session, driver) =
                Session::server(conn, Config::default().with_protocol(protocol));
            smol::spawn(driver).detach();
            smol::spawn(async move {
                while let Ok(mut s) = session.accept().await {
                    smol::spawn(async move {
                        match job {
                            Job::Sink => {
                                let _ = sink::serve(&mut s).await;
                            }
                            Job::Echo => {
                                let (r, mut w) = s.split();
                                let _ = futures::io::copy(r, &mut w).await;
                                let _ = futures::io::AsyncWriteExt::close(&mut w).await;
                            }
                        }
                    })
                    .detach();
                }
            })
            .detach();
        }
    });
}

/// A client of this crate against the server at `addr`, doing what the Go client's command for
/// `kind` does and timing it the same way; returns the figure the Go client would print. One
/// thread runs the session's driver and the work, as a client with one connection would run them
/// (no hop between threads per message).
fn run_ours(
    addr: SocketAddr,
    version: u8,
    kind: Kind,
    mib: u64,
    rounds: u64,
) -> Result<f64, String> {
    let conn = smol::Async::<TcpStream>::connect(addr);
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        let conn = conn
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = conn.get_ref().set_nodelay(true);
        let (session, driver) =
            Session::client(conn, Config::default().with_protocol(protocol(version)));
        let _driver = ex.spawn(driver);
        let work = async {
            match kind {
                Kind::Bulk => {
                    let chunk = vec![0x5au8; 32 * 1024];
                    let start = Instant::now();
                    let mut s = session.open().await.map_err(|e| e.to_string())?;
                    sink::request(&mut s, (mib << 20) as usize, &chunk).await?;
                    let secs = start.elapsed().as_secs_f64();
                    let _ = s.close().await;
                    Ok(mib as f64 / secs)
                }
                Kind::Rtt => {
                    let mut s = session.open().await.map_err(|e| e.to_string())?;
                    let mut times = Vec::with_capacity(rounds as usize);
                    let (mut msg, mut back) = ([0u8; 64], [0u8; 64]);
                    for i in 0..rounds {
                        fill(&mut msg, i);
                        let start = Instant::now();
                        s.write_all(&msg).await.map_err(|e| e.to_string())?;
                        s.read_exact(&mut back).await.map_err(|e| e.to_string())?;
                        times.push(start.elapsed().as_secs_f64() * 1e6);
                        if back != msg {
                            return Err(format!("echo mismatch in round {i}"));
                        }
                    }
                    Ok(median(times))
                }
                Kind::Churn => {
                    let (mut msg, mut back) = (vec![0u8; 4096], vec![0u8; 4096]);
                    let start = Instant::now();
                    for i in 0..rounds {
                        fill(&mut msg, i);
                        let mut s = session.open().await.map_err(|e| e.to_string())?;
                        s.write_all(&msg).await.map_err(|e| e.to_string())?;
                        s.read_exact(&mut back).await.map_err(|e| e.to_string())?;
                        if back != msg {
                            return Err(format!("echo mismatch in cycle {i}"));
                        }
                        let _ = s.close().await;
                    }
                    Ok(rounds as f64 / start.elapsed().as_secs_f64())
                }
            }
        };
        let timeout = async {
            smol::Timer::after(TIMEOUT).await;
            Err(format!("no result after {} s", TIMEOUT.as_secs()))
        };
        let got = futures::future::select(Box::pin(work), Box::pin(timeout))
            .await
            .factor_first()
            .0;
        got
    }))
}

/// Bytes that differ from round to round, so that an echo of the wrong round is caught.
fn fill(buf: &mut [u8], round: u64) {
    let mut x = round.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in buf {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// Runs the Go client with `args` against `addr`; returns its result line.
fn run_client(go: &PathBuf, version: u8, args: &[String]) -> Result<String, String> {
    let out = Command::new(go)
        .args(args)
        .env("XTACI_VERSION", version.to_string())
        .env("HARNESS_TIMEOUT", TIMEOUT.as_secs().to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {GO}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{GO} {} failed ({}): {}",
            args[0],
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The number after `key` in a result line (`... MiBps=47.3`).
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.parse().ok())
}

struct Row {
    name: &'static str,
    kind: Kind,
    key: &'static str,
}

impl Row {
    /// The Go client's arguments after the address.
    fn args(&self, mib: u64, rounds: u64) -> Vec<String> {
        match self.kind {
            Kind::Bulk => vec!["bench-client".into(), "1".into(), mib.to_string()],
            Kind::Rtt => vec!["rtt-client".into(), rounds.to_string(), "64".into()],
            Kind::Churn => vec!["churn-client".into(), rounds.to_string(), "1".into()],
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`: nothing to list
    }
    let Some(go) = program() else {
        eprintln!(
            "{GO} not found (set SMUX_PEERS to the folder of shared/peers): nothing measured"
        );
        return;
    };
    let runs = env_num("SMUX_BENCH_RUNS", 3).max(1) as usize;
    let mib = env_num("SMUX_BENCH_BULK_MIB", 512);
    let rounds = env_num("SMUX_BENCH_ROUNDS", 20_000);
    let rows = [
        Row {
            name: "bulk, 1 stream, MiB/s",
            kind: Kind::Bulk,
            key: "MiBps=",
        },
        Row {
            name: "rtt p50, 64 B, µs",
            kind: Kind::Rtt,
            key: "p50_us=",
        },
        Row {
            name: "churn, 1 worker, cycles/s",
            kind: Kind::Churn,
            key: "ops_per_s=",
        },
    ];
    let started = Instant::now();
    let mut table = String::new();
    table.push_str(&format!(
        "Command: `cargo bench -p ysmux-bench --bench go_xtaci` ({runs} runs, medians, interleaved). \
         The Go programs are {GO}'s.\n"
    ));
    // One run of a row: `who` serves, `client` measures.
    let one = |row: &Row, version: u8, who: Server, client: Client| -> Result<f64, String> {
        let (addr, guard) = start_server(who, row.kind.job(), version, &go)?;
        let got = match client {
            Client::Go => {
                let mut args = row.args(mib, rounds);
                args.insert(1, addr.to_string());
                run_client(&go, version, &args).and_then(|line| {
                    field(&line, row.key).ok_or_else(|| format!("no {} in {line:?}", row.key))
                })
            }
            Client::Ours => run_ours(addr, version, row.kind, mib, rounds),
        };
        drop(guard);
        got
    };
    // Each table: what stays (the client or the server) and the two it compares.
    let tables = [
        (
            "The Go client; each figure is the Go client's own.",
            "Go client, loopback TCP",
            ["Go server", "ysmux server"],
            [(Server::Go, Client::Go), (Server::Ours, Client::Go)],
        ),
        (
            "The Go server; each client times itself the same way (same sizes and writes, every echo compared).",
            "Go server, loopback TCP",
            ["Go client", "ysmux client"],
            [(Server::Go, Client::Go), (Server::Go, Client::Ours)],
        ),
    ];
    for (what, corner, [a_name, b_name], pair) in tables {
        table.push_str(&format!(
            "\n{what}\n\n| {corner} | {a_name} v1 | {b_name} v1 | ratio | {a_name} v2 | {b_name} v2 | ratio |\n|---|---|---|---|---|---|---|\n"
        ));
        for row in &rows {
            let mut cells = Vec::new();
            for version in [1u8, 2] {
                let mut got = [Vec::new(), Vec::new()];
                for run in 0..runs {
                    for (i, (who, client)) in pair.into_iter().enumerate() {
                        match one(row, version, who, client) {
                            Ok(x) => got[i].push(x),
                            Err(e) => eprintln!("  {} v{version} run {}: {e}", row.name, run + 1),
                        }
                    }
                }
                let [g, o] = got;
                let (g, o) = (
                    (!g.is_empty()).then(|| median(g)),
                    (!o.is_empty()).then(|| median(o)),
                );
                let show = |x: Option<f64>| x.map_or("FAIL".to_string(), |x| format!("{x:.1}"));
                let ratio = match (g, o) {
                    (Some(g), Some(o)) if g > 0.0 => format!("{:.2}x", o / g),
                    _ => "-".into(),
                };
                cells.push(format!("{} | {} | {ratio}", show(g), show(o)));
                eprintln!(
                    "  {corner}: {} v{version}: {a_name} {} {b_name} {}",
                    row.name,
                    show(g),
                    show(o)
                );
            }
            table.push_str(&format!("| {} | {} |\n", row.name, cells.join(" | ")));
        }
    }
    table.push_str(&format!(
        "\nratio: ysmux's figure over Go's (for rtt, lower is better). {:.0} s in all.\n",
        started.elapsed().as_secs_f64()
    ));
    println!("{table}");
    let out = std::env::var_os("SMUX_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/smux-bench"));
    let _ = std::fs::create_dir_all(&out);
    let path = out.join("go_xtaci.md");
    match std::fs::write(&path, &table) {
        Ok(()) => println!("table: {}", path.display()),
        Err(e) => eprintln!("writing {}: {e}", path.display()),
    }
}
