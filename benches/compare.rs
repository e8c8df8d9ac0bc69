//! smux against raw TCP and the other Rust multiplexers (issue 5).
//!
//! ```text
//! cargo bench -p ysmux-bench --bench compare                     # everything, full sizes
//! SMUX_BENCH_QUICK=1 cargo bench -p ysmux-bench --bench compare  # small sizes (about 6 minutes)
//! cargo bench -p ysmux-bench --bench compare -- rtt churn         # only some scenarios
//! ```
//!
//! Scenarios (each over loopback TCP and over an in-memory pipe, under tokio with 2 workers and
//! under smol with 2 executor threads; client and server in this one process):
//! - `bulk`: S streams (1, 64, 1024, 8192, 32768) share N bytes (512 MiB; quick 64 MiB) client to
//!   server, 64 KiB writes, timed from the first open until the server counted every byte. Up to
//!   1,024 streams, side by side (below): in blocks of at least 64 KiB a stream, after one such
//!   block uncounted; with more, one transfer each, in turn. Ratio: to ONE raw connection moving
//!   the same N bytes.
//! - `rtt`: one stream, 64-byte messages echoed, 20,000 rounds (quick 2,000) after 200 warm-up
//!   rounds; median and p99 of the rounds. Ratio: to the same on one raw connection.
//! - `churn`: open, write 1 byte, read its echo, close, 20,000 times (quick 2,000) in sequence,
//!   after 100 warm-up cycles. Ratio: to the same with raw connections (TCP connect + exchange +
//!   close, per cycle).
//!
//!   These rows tell apart differences of a few percent, and on a shared virtual machine the same
//!   code's speed moves by a third or more between processes a second apart. So every
//!   implementation's session runs side by side in one runtime, and the rounds (rtt, churn: 20
//!   blocks) or bytes (bulk) go in blocks, the implementations taking turns block by block in a
//!   shuffled order (`compare/lanes.rs`): each sees the same machine.
//! - `stalled`: a stream moves 64 MiB (quick 32 MiB) alone (`solo`); then a stream whose reader
//!   never reads gets a writer writing for as long as it is let, and once it is stuck another
//!   stream moves the same beside it (`busy`); then the stalled stream goes. Five such pairs
//!   (quick three), back to back in one session, each counted transfer after an uncounted one
//!   in the same state; medians kept.
//!   Ratio: the median of the pairs' busy/solo rates. Also shown: how much the stalled writer got
//!   accepted (flow control should hold it to about one window).
//! - `idle`: RSS growth per stream pair (both ends) with 10,000 open idle streams, each measured in
//!   a fresh process (this binary re-executed with `--idle-child`).
//! - `wan`: one long, fat link: loopback TCP through a link emulator in user space
//!   (`compare/link.rs`: 40 ms and 10 ms round trip, 1 Gbit/s, a bottleneck queue of one
//!   bandwidth-delay product). 1 and 8 streams write for 6 s (quick 3 s); the bytes read in that
//!   time, window growth included. Ratio: to ONE raw connection through the same link. Also shown:
//!   the link's self-check (raw TCP's ping against the round trip, its rate against the link's),
//!   and `smux-base`, this crate with the original's defaults (its fixed window, 32 KiB frames),
//!   as a share of 512 KiB per round trip (its bound); and, where `SMUX_PEERS` (or
//!   ../shared/peers) holds the Go original, one stream between the real original-0519644 and this
//!   crate with its defaults, each way, as a share of the same bound. Run once per run, on the first runtime and net listed, whatever they are.
//! - `pool`: where one connection is the bottleneck: a link of 10 ms and 200 Mbit/s for EACH
//!   connection (as a shaped network gives each flow); a `ysmux::pool::Pool` of 1, 2 and 4
//!   sessions moving 8 streams for the wan time. Ratio: to as many raw connections through the
//!   same link, one writer each. Run like `wan`.
//!
//! Every run gets a fresh runtime (rtt, churn and bulk up to 1,024 streams: one for all
//! implementations, see above); runs are interleaved (run 1 of every implementation, then run 2,
//! ...) and repeated (`SMUX_BENCH_RUNS`, default 3), and the table shows medians. How each peer is
//! made to run each scenario fairly: see `compare/peers.rs`.
//!
//! Environment: `SMUX_BENCH_QUICK=1`, `SMUX_BENCH_RUNS`, `SMUX_BENCH_SCENARIOS` (bulk,rtt,churn,
//! stalled,idle), `SMUX_BENCH_IMPLS` (raw,smux,smux-x1,smux-x2,yamux,tokio-yamux,async_smux; smux-x1
//! and smux-x2 are this crate speaking xtaci/smux v1 and v2, async_smux's wire), `SMUX_BENCH_NETS`
//! (tcp,pipe), `SMUX_BENCH_RUNTIMES` (tokio,smol), `SMUX_BENCH_STREAMS` (1,64,1024,8192,32768),
//! `SMUX_BENCH_BULK_MIB`, `SMUX_BENCH_STALLED_MIB`, `SMUX_BENCH_ROUNDS`, `SMUX_BENCH_IDLE_STREAMS`,
//! `SMUX_BENCH_WAN_MS` (40,10), `SMUX_BENCH_WAN_STREAMS` (1,8), `SMUX_BENCH_WAN_S`,
//! `SMUX_BENCH_TIMEOUT_S` (per run), `SMUX_BENCH_WORKERS` (threads per runtime, default 2),
//! `SMUX_BENCH_OUT` (directory for compare.svg, wan.svg, compare.md and compare.csv; default
//! target/smux-bench).

#[path = "compare/lanes.rs"]
mod lanes;
#[path = "compare/link.rs"]
mod link;
#[path = "compare/original.rs"]
mod original;
#[path = "compare/peers.rs"]
mod peers;
#[path = "compare/pool.rs"]
mod pool;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/rt.rs"]
mod rt;
#[path = "compare/scenarios.rs"]
mod scenarios;
#[path = "../tests/common/sink.rs"]
mod sink;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peers::{Impl, Side};
use report::{Metric, Results};
use rt::{Net, NetKind, Rt, RtKind, Spawner};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Bulk,
    Rtt,
    Churn,
    Stalled,
    Idle,
    Wan,
    Pool,
}

const SCENARIOS: [(Scenario, &str); 7] = [
    (Scenario::Bulk, "bulk"),
    (Scenario::Rtt, "rtt"),
    (Scenario::Churn, "churn"),
    (Scenario::Stalled, "stalled"),
    (Scenario::Idle, "idle"),
    (Scenario::Wan, "wan"),
    (Scenario::Pool, "pool"),
];

struct Cfg {
    quick: bool,
    runs: usize,
    scenarios: Vec<Scenario>,
    impls: Vec<Impl>,
    nets: Vec<NetKind>,
    runtimes: Vec<RtKind>,
    streams: Vec<usize>,
    bulk_bytes: u64,
    stalled_bytes: u64,
    rounds: usize,
    idle_streams: usize,
    wan_ms: Vec<u32>,
    wan_streams: Vec<usize>,
    wan_time: Duration,
    timeout: Duration,
    out: PathBuf,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.trim().is_empty())
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match env(name) {
        Some(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: not a number: {s}")),
        None => default,
    }
}

/// A count that must be at least 1.
fn env_count(name: &str, default: usize) -> usize {
    let n = env_num(name, default);
    assert!(n > 0, "{name}: must be at least 1");
    n
}

fn env_list<T>(name: &str, all: Vec<T>, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
    match env(name) {
        Some(s) => s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| parse(x).unwrap_or_else(|| panic!("{name}: unknown value {x}")))
            .collect(),
        None => all,
    }
}

impl Cfg {
    fn from_env(args: &[String]) -> Cfg {
        let quick = env("SMUX_BENCH_QUICK").is_some_and(|v| v != "0");
        let parse_scenario = |x: &str| SCENARIOS.iter().find(|(_, n)| *n == x).map(|(s, _)| *s);
        let mut scenarios = env_list(
            "SMUX_BENCH_SCENARIOS",
            SCENARIOS.iter().map(|s| s.0).collect(),
            parse_scenario,
        );
        // `cargo bench -p ysmux-bench --bench compare -- rtt churn`: scenario names as arguments (cargo adds
        // `--bench`, which is ignored with every other flag).
        let named: Vec<Scenario> = args.iter().filter_map(|a| parse_scenario(a)).collect();
        if !named.is_empty() {
            scenarios = named;
        }
        let mib = 1u64 << 20;
        Cfg {
            quick,
            runs: env_count("SMUX_BENCH_RUNS", 3),
            scenarios,
            impls: env_list("SMUX_BENCH_IMPLS", peers::ALL.to_vec(), Impl::parse),
            nets: env_list(
                "SMUX_BENCH_NETS",
                vec![NetKind::Tcp, NetKind::Pipe],
                |x| match x {
                    "tcp" => Some(NetKind::Tcp),
                    "pipe" => Some(NetKind::Pipe),
                    _ => None,
                },
            ),
            runtimes: env_list(
                "SMUX_BENCH_RUNTIMES",
                vec![RtKind::Tokio, RtKind::Smol],
                |x| match x {
                    "tokio" => Some(RtKind::Tokio),
                    "smol" => Some(RtKind::Smol),
                    _ => None,
                },
            ),
            streams: env_list("SMUX_BENCH_STREAMS", vec![1, 64, 1024, 8192, 32768], |x| {
                x.parse().ok()
            }),
            bulk_bytes: env_num("SMUX_BENCH_BULK_MIB", if quick { 64 } else { 512 }) * mib,
            stalled_bytes: env_num("SMUX_BENCH_STALLED_MIB", if quick { 32 } else { 64 }) * mib,
            rounds: env_count("SMUX_BENCH_ROUNDS", if quick { 2_000 } else { 20_000 }),
            idle_streams: env_num("SMUX_BENCH_IDLE_STREAMS", 10_000),
            wan_ms: env_list("SMUX_BENCH_WAN_MS", vec![40, 10], |x| x.parse().ok()),
            wan_streams: env_list("SMUX_BENCH_WAN_STREAMS", vec![1, 8], |x| x.parse().ok()),
            wan_time: Duration::from_secs(env_num("SMUX_BENCH_WAN_S", if quick { 3 } else { 6 })),
            timeout: Duration::from_secs(env_num(
                "SMUX_BENCH_TIMEOUT_S",
                if quick { 15 } else { 120 },
            )),
            out: env("SMUX_BENCH_OUT").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/smux-bench")
            }),
        }
    }
}

/// One measured run: a fresh runtime, a fresh transport, a fresh session pair of `imp`, then `f`
/// with a timeout.
fn run_one<T, F, Fut>(cfg: &Cfg, rtk: RtKind, netk: NetKind, imp: Impl, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Spawner, Side, Side) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
{
    let rt = Rt::new(rtk);
    let sp = rt.spawner();
    let timeout = cfg.timeout;
    rt.run(async move {
        let net = Arc::new(
            Net::new(netk, rtk)
                .await
                .map_err(|e| format!("transport: {e}"))?,
        );
        let (c, s) = peers::pair(imp, &sp, net)
            .await
            .map_err(|e| format!("session: {e}"))?;
        match sp.timeout(timeout, f(sp.clone(), c, s)).await {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(format!("{e}")),
            None => Err(format!("timed out after {} s", timeout.as_secs())),
        }
    })
}

/// Bulk with up to so many streams runs in lanes, side by side; with more, each implementation in
/// turn moves its bytes in one transfer (in blocks, opening that many streams would be most of
/// what a block measures).
const BULK_LANES_UP_TO: usize = 1024;
/// Bytes a bulk block moves on each stream, at least.
const BULK_BLOCK_SHARE: u64 = 64 * 1024;

/// bulk with many streams: each implementation in turn, one transfer of `share` bytes on each of
/// `streams` streams, in a fresh runtime.
fn bulk_alone(
    cfg: &Cfg,
    res: &mut Results,
    rtk: RtKind,
    netk: NetKind,
    streams: usize,
    share: u64,
) {
    let metric = Metric::Bulk(streams);
    for &imp in &cfg.impls {
        if imp == Impl::Raw || res.failures.contains_key(&(netk, rtk, metric, imp)) {
            continue;
        }
        let r = run_one(cfg, rtk, netk, imp, move |sp, c, s| {
            scenarios::bulk(sp, c, s, streams, share)
        });
        match r {
            Ok(d) => res.add(
                (netk, rtk, metric, imp),
                (share * streams as u64) as f64 / secs(d),
            ),
            Err(e) => res.fail((netk, rtk, metric, imp), e),
        }
    }
}

/// The lanes of `metric`'s scenario: every implementation not failed in an earlier run.
fn lanes_cfg(
    cfg: &Cfg,
    res: &Results,
    metric: Metric,
    rtk: RtKind,
    netk: NetKind,
    warmup: usize,
) -> lanes::Lanes {
    lanes::Lanes {
        blocks: lanes::BLOCKS,
        impls: (cfg.impls.iter().copied())
            // What failed (timed out, stuck) in an earlier run is not run again.
            .filter(|&imp| !res.failures.contains_key(&(netk, rtk, metric, imp)))
            .collect(),
        rtk,
        netk,
        warmup,
        rounds: cfg.rounds,
        timeout: cfg.timeout,
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--idle-child") {
        idle_child(&args[2..]);
        return;
    }
    let cfg = Cfg::from_env(&args[1..]);
    let mut res = Results {
        load_start: loadavg(),
        source: source_state(),
        ..Results::default()
    };
    let started = Instant::now();
    eprintln!(
        "smux compare: {} mode, {} run(s); scenarios {:?}; impls {:?}; bulk {} MiB over {:?} streams, {} rounds, stalled {} MiB, idle {} streams",
        if cfg.quick { "QUICK" } else { "full" },
        cfg.runs,
        cfg.scenarios,
        cfg.impls.iter().map(|i| i.name()).collect::<Vec<_>>(),
        cfg.bulk_bytes >> 20,
        cfg.streams,
        cfg.rounds,
        cfg.stalled_bytes >> 20,
        cfg.idle_streams
    );
    for run in 0..cfg.runs {
        for &rtk in &cfg.runtimes {
            for &netk in &cfg.nets {
                for &sc in &cfg.scenarios {
                    if sc == Scenario::Idle && run > 0 {
                        continue; // memory does not vary from run to run: measured once
                    }
                    let own_nets = matches!(sc, Scenario::Wan | Scenario::Pool);
                    if own_nets && (netk != cfg.nets[0] || rtk != cfg.runtimes[0]) {
                        continue; // its own nets, and its time is the link's: once per run
                    }
                    let t = Instant::now();
                    one_scenario(&cfg, &mut res, sc, rtk, netk);
                    eprintln!(
                        "  run {}/{} {:>5} {:>4} {:<7} {:>6.1} s",
                        run + 1,
                        cfg.runs,
                        rtk.name(),
                        netk.name(),
                        format!("{sc:?}").to_lowercase(),
                        t.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    let took = started.elapsed();
    let table = res.tables(false);
    println!("{table}");
    println!(
        "medians of {} run(s); (x) = ratio: bulk to ONE raw connection, rtt/churn to raw, stalled busy to its solo rate. {:.0} s in all.",
        cfg.runs,
        took.as_secs_f64()
    );
    if let Err(e) = write_files(&cfg, &res, took) {
        eprintln!("could not write results to {}: {e}", cfg.out.display());
    }
}

fn write_files(cfg: &Cfg, res: &Results, took: Duration) -> io::Result<()> {
    std::fs::create_dir_all(&cfg.out)?;
    let mut md = format!(
        "Command: `{}cargo bench -p ysmux-bench --bench compare` ({} mode, {} runs, medians; {:.0} s). Bulk {} MiB, {} rtt/churn rounds, stalled {} MiB, idle {} streams. {} workers per runtime, client and server in one process.\n",
        if cfg.quick { "SMUX_BENCH_QUICK=1 " } else { "" },
        if cfg.quick { "quick" } else { "full" },
        cfg.runs,
        took.as_secs_f64(),
        cfg.bulk_bytes >> 20,
        cfg.rounds,
        cfg.stalled_bytes >> 20,
        cfg.idle_streams,
        rt::workers()
    );
    if let Some(src) = &res.source {
        md.push_str(&format!("{src}\n"));
    }
    md.push_str(&format!(
        "Machine: {} cores; load average (1 min) {} at the start, {} at the end{}.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        res.load_start,
        loadavg(),
        if res.load_start.parse::<f64>().unwrap_or(0.0) > 0.5 {
            " (the start's: other work was running, so absolute numbers are noisy; ratios, taken \
             from the same interleaved runs, less so)"
        } else {
            ""
        }
    ));
    md.push_str(&res.tables(true));
    std::fs::write(cfg.out.join("compare.md"), md)?;
    std::fs::write(cfg.out.join("compare.csv"), res.csv())?;
    if let Some(svg) = res.svg() {
        let p = cfg.out.join("compare.svg");
        std::fs::write(&p, svg)?;
        println!("chart: {}", p.display());
    }
    if let Some(svg) = res.wan_svg() {
        let p = cfg.out.join("wan.svg");
        std::fs::write(&p, svg)?;
        println!("chart: {}", p.display());
    }
    println!("table: {}", cfg.out.join("compare.md").display());
    Ok(())
}

fn one_scenario(cfg: &Cfg, res: &mut Results, sc: Scenario, rtk: RtKind, netk: NetKind) {
    let key = |m: Metric, i: Impl| (netk, rtk, m, i);
    // What failed (timed out, stuck) in an earlier run is not run again: it would only cost time.
    let failed = |res: &Results, m: Metric, i: Impl| res.failures.contains_key(&key(m, i));
    match sc {
        Scenario::Bulk => {
            for &streams in &cfg.streams {
                let metric = Metric::Bulk(streams);
                let share = cfg.bulk_bytes / streams as u64;
                let bytes = share * streams as u64;
                if streams > BULK_LANES_UP_TO {
                    bulk_alone(cfg, res, rtk, netk, streams, share);
                    continue;
                }
                let mut l = lanes_cfg(cfg, res, metric, rtk, netk, 0);
                // The baseline is ONE raw connection moving the same bytes.
                l.impls.retain(|&imp| imp != Impl::Raw || streams == 1);
                l.rounds = share as usize;
                l.blocks = ((share / BULK_BLOCK_SHARE) as usize).clamp(1, lanes::BLOCKS);
                l.warmup = share as usize / l.blocks; // one block's worth
                let lanes = lanes::run(&l, move |sp, c, s, blocks| {
                    scenarios::bulk_lane(sp, c, s, streams, blocks)
                });
                for (imp, r) in lanes {
                    match r {
                        Ok(blocks) => {
                            let took: Duration = blocks.into_iter().sum();
                            res.add(key(metric, imp), bytes as f64 / secs(took));
                        }
                        Err(e) => res.fail(key(metric, imp), e),
                    }
                }
            }
        }
        Scenario::Rtt => {
            let lanes = lanes::run(
                &lanes_cfg(cfg, res, Metric::RttP50, rtk, netk, 200),
                |sp, c, s, blocks| scenarios::rtt_lane(sp, c, s, 64, blocks),
            );
            for (imp, r) in lanes {
                match r {
                    Ok(blocks) => {
                        let mut t: Vec<Duration> = blocks.into_iter().flatten().collect();
                        res.add(key(Metric::RttP50, imp), secs(percentile(&mut t, 0.5)));
                        res.add(key(Metric::RttP99, imp), secs(percentile(&mut t, 0.99)));
                    }
                    Err(e) => res.fail(key(Metric::RttP50, imp), e),
                }
            }
        }
        Scenario::Churn => {
            let lanes = lanes::run(
                &lanes_cfg(cfg, res, Metric::Churn, rtk, netk, 100),
                scenarios::churn_lane,
            );
            for (imp, r) in lanes {
                match r {
                    Ok(blocks) => {
                        let took: Duration = blocks.into_iter().sum();
                        res.add(key(Metric::Churn, imp), cfg.rounds as f64 / secs(took));
                    }
                    Err(e) => res.fail(key(Metric::Churn, imp), e),
                }
            }
        }
        Scenario::Stalled => {
            let bytes = cfg.stalled_bytes;
            let reps = if cfg.quick { 3 } else { 5 };
            for &imp in &cfg.impls {
                if imp == Impl::Raw || failed(res, Metric::StalledBusy, imp) {
                    continue;
                }
                match run_one(cfg, rtk, netk, imp, move |sp, c, s| {
                    scenarios::stalled(sp, c, s, bytes, reps)
                }) {
                    Ok(r) => {
                        res.add(key(Metric::StalledSolo, imp), bytes as f64 / secs(r.solo));
                        res.add(key(Metric::StalledBusy, imp), bytes as f64 / secs(r.busy));
                        res.add(
                            key(Metric::StalledCommitted, imp),
                            r.stalled_committed as f64,
                        );
                        res.add(key(Metric::StalledRatio, imp), r.ratio);
                    }
                    Err(e) => res.fail(key(Metric::StalledBusy, imp), e),
                }
            }
        }
        Scenario::Wan => wan(cfg, res, rtk),
        Scenario::Pool => pool_scenario(cfg, res, rtk),
        Scenario::Idle => {
            for &imp in &cfg.impls {
                if imp == Impl::Raw {
                    continue;
                }
                match idle_parent(cfg, imp, rtk, netk) {
                    Ok(v) => res.add(key(Metric::Idle, imp), v),
                    Err(e) => res.fail(key(Metric::Idle, imp), e),
                }
            }
        }
    }
}

/// wan: through the link emulator, each round trip: the self-check (raw TCP's ping and rate), then
/// every implementation (and smux with the original's fixed window) moving data for
/// `cfg.wan_time` over 1 and 8 streams.
fn wan(cfg: &Cfg, res: &mut Results, rtk: RtKind) {
    let mut impls = cfg.impls.clone();
    if let Some(i) = impls.iter().position(|i| *i == Impl::Smux) {
        impls.insert(i + 1, Impl::SmuxBase);
    }
    let time = cfg.wan_time;
    for &ms in &cfg.wan_ms {
        let netk = NetKind::Wan { ms, mbit: 1000 };
        let key = |m: Metric, i: Impl| (netk, rtk, m, i);
        match run_one(cfg, rtk, netk, Impl::Raw, |sp, c, s| {
            scenarios::rtt(sp, c, s, 1, 5, 1)
        }) {
            Ok(mut t) => res.add(
                key(Metric::WanPing, Impl::Raw),
                secs(percentile(&mut t, 0.5)),
            ),
            Err(e) => res.fail(key(Metric::WanPing, Impl::Raw), e),
        }
        if cfg.impls.contains(&Impl::Smux) {
            let shape = netk.shape().expect("a wan");
            // What one window per round trip moves in the wan time.
            let bytes =
                (f64::from(ysmux::DEFAULT_WINDOW) / shape.rtt().as_secs_f64() * secs(time)) as u64;
            for sends in [true, false] {
                let k = key(Metric::WanOriginal { sends }, Impl::Smux);
                if res.failures.contains_key(&k) {
                    continue;
                }
                let r = if sends {
                    original::original_sends(rtk, shape, bytes, cfg.timeout)
                } else {
                    original::original_receives(rtk, shape, bytes, cfg.timeout)
                };
                match r {
                    Ok(v) => res.add(k, v),
                    Err(e) => res.fail(k, e),
                }
            }
        }
        for &streams in &cfg.wan_streams {
            for &imp in &impls {
                let m = Metric::Wan(streams);
                if imp == Impl::Raw && streams != 1 || res.failures.contains_key(&key(m, imp)) {
                    continue;
                }
                match run_one(cfg, rtk, netk, imp, move |sp, c, s| {
                    scenarios::timed_bulk(sp, c, s, streams, time)
                }) {
                    Ok(bytes) => res.add(key(m, imp), bytes as f64 / secs(time)),
                    Err(e) => res.fail(key(m, imp), e),
                }
            }
        }
    }
}

/// pool: through a link of 10 ms and 200 Mbit/s per connection, a pool of 1, 2 and 4 sessions
/// moving 8 streams, against as many raw connections.
fn pool_scenario(cfg: &Cfg, res: &mut Results, rtk: RtKind) {
    let netk = NetKind::Wan { ms: 10, mbit: 200 };
    let time = cfg.wan_time;
    for n in [1, 2, 4] {
        for (imp, smux) in [(Impl::Raw, false), (Impl::Smux, true)] {
            let key = (netk, rtk, Metric::Pool(n), imp);
            if !cfg.impls.contains(&imp) || res.failures.contains_key(&key) {
                continue;
            }
            let rt = Rt::new(rtk);
            let sp = rt.spawner();
            let timeout = cfg.timeout;
            let r: Result<u64, String> = rt.run(async move {
                let net = Arc::new(Net::new(netk, rtk).await.map_err(|e| e.to_string())?);
                match sp
                    .timeout(timeout, pool::run(sp.clone(), rtk, net, n, smux, time))
                    .await
                {
                    Some(r) => r.map_err(|e| e.to_string()),
                    None => Err(format!("timed out after {} s", timeout.as_secs())),
                }
            });
            match r {
                Ok(bytes) => res.add(key, bytes as f64 / secs(time)),
                Err(e) => res.fail(key, e),
            }
        }
    }
}

/// Runs the idle scenario in a fresh process and reads its answer.
fn idle_parent(cfg: &Cfg, imp: Impl, rtk: RtKind, netk: NetKind) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args([
            "--idle-child",
            imp.name(),
            &netk.name(),
            rtk.name(),
            &cfg.idle_streams.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + cfg.timeout;
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", cfg.timeout.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("IDLE ").and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| {
            format!(
                "child failed: {} {}",
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
}

/// Which smux is measured: the work tree's commit, and whether src/ had changes (when the bench
/// started, just after cargo built it).
fn source_state() -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rev = git(&["rev-parse", "--short", "HEAD"]).filter(|r| !r.is_empty())?;
    let dirty = git(&["status", "--porcelain", "--", "../src"]).is_some_and(|s| !s.is_empty());
    Some(format!(
        "smux at commit {rev}{}.",
        if dirty {
            " with uncommitted changes in src/"
        } else {
            ""
        }
    ))
}

/// The 1-minute load average, as /proc/loadavg gives it.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `--idle-child IMPL NET RUNTIME N`: prints `IDLE <bytes per stream pair>`.
fn idle_child(args: &[String]) {
    let imp = Impl::parse(&args[0]).expect("impl");
    let netk = if args[1] == "pipe" {
        NetKind::Pipe
    } else {
        NetKind::Tcp
    };
    let rtk = if args[2] == "smol" {
        RtKind::Smol
    } else {
        RtKind::Tokio
    };
    let n: usize = args[3].parse().expect("n");
    let rt = Rt::new(rtk);
    let sp = rt.spawner();
    let r: Result<f64, String> = rt.run(async move {
        let net = Arc::new(Net::new(netk, rtk).await.map_err(|e| e.to_string())?);
        let (c, s) = peers::pair(imp, &sp, net)
            .await
            .map_err(|e| e.to_string())?;
        // Warm up: a few streams, so that the session's own structures and the allocator's first
        // arenas are in the baseline, not in the per-stream cost.
        let warm = scenarios::idle(sp.clone(), c.clone(), s.clone(), 16)
            .await
            .map_err(|e| e.to_string())?;
        let before = rss_bytes();
        let held = scenarios::idle(sp.clone(), c.clone(), s.clone(), n)
            .await
            .map_err(|e| e.to_string())?;
        let after = rss_bytes();
        drop((warm, held, c, s));
        Ok(after.saturating_sub(before) as f64 / n as f64)
    });
    match r {
        Ok(v) => println!("IDLE {v:.1}"),
        Err(e) => {
            println!("ERR {e}");
            std::process::exit(1);
        }
    }
    // Leave without tearing 10,000 streams down.
    std::process::exit(0);
}
