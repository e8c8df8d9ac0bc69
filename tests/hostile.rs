//! What a hostile peer can make a default server hold, measured: the heap bytes live (a counting
//! allocator) and the resident set as the operating system counts it (Linux).
//!
//! The peer opens streams and fills every window, and never answers a FIN. Whether the server
//! never accepts them (they wait in the accept backlog) or accepts and drops each at once, what it
//! holds stays within the memory budget (`Config::with_memory_budget`, 32 MiB by default) plus a
//! little per stream id in use. Its own test binary; the tests run one at a time.

mod common;

use common::counting::{self, Counting};
use common::*;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use ysmux::{Config, Session, DEFAULT_MEMORY_BUDGET};

#[global_allocator]
static ALLOC: Counting = Counting;

const WINDOW: usize = 512 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

type RawWrite = futures::io::WriteHalf<ysmux::Pipe>;

/// Sends SYN and a full window of data for `streams` streams, in 64 KiB frames, from a raw peer
/// that reads (and discards) whatever the session writes back, and never answers a FIN. Returns
/// once everything sent is handled (the answer to a VRM probe sent last has come back).
async fn flood(
    ex: &Ex,
    server: &Session,
    raw: ysmux::Pipe,
    streams: u16,
    accept: bool,
) -> RawWrite {
    let (mut rx, mut tx) = raw.split();
    let (synced_tx, synced) = futures::channel::oneshot::channel::<()>();
    ex.spawn(async move {
        let answer = Frame::new(VRM, 0x3420, 0x1278_3456).bytes();
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut synced_tx = Some(synced_tx);
        while let Ok(n) = rx.read(&mut buf).await {
            if n == 0 {
                break;
            }
            // Only FINs (7 bytes each) and the VRM answer come back: look for the answer.
            seen.extend_from_slice(&buf[..n]);
            if seen.chunks(7).any(|f| f == answer) {
                if let Some(t) = synced_tx.take() {
                    let _ = t.send(());
                }
            }
            let keep = seen.len() % 7;
            seen.drain(..seen.len() - keep);
        }
    })
    .detach();
    if accept {
        let server = server.clone();
        ex.spawn(async move {
            while let Ok(s) = server.accept().await {
                drop(s); // closed at once: its FIN is never answered
            }
        })
        .detach();
    }
    let payload = vec![0x5A; 65_536];
    let mut frame = Frame::psh(0, &payload).bytes();
    for id in 1..=streams {
        tx.write_all(&Frame::syn(id).bytes()).await.expect("SYN");
        frame[1..3].copy_from_slice(&id.to_le_bytes());
        for _ in 0..WINDOW / 65_536 {
            tx.write_all(&frame).await.expect("PSH");
        }
    }
    tx.write_all(&Frame::new(VRM, 0x1234, 0x1234_5678).bytes())
        .await
        .expect("VRM");
    tx.flush().await.expect("flush");
    wait("the session to handle the flood", synced)
        .await
        .expect("answer");
    tx
}

fn report(what: &str, heap: isize, rss: Option<(u64, u64)>, before: Option<(u64, u64)>) {
    let os = match (rss, before) {
        (Some((_, peak)), Some((_, peak0))) => {
            format!(", peak RSS +{:.1} MiB", (peak as f64 - peak0 as f64) / MIB)
        }
        _ => String::new(),
    };
    println!("{what}: heap +{:.1} MiB{os}", heap as f64 / MIB);
}

/// 1,024 streams (the default accept backlog), each with a full window, never accepted: 512 MiB
/// of payload, which the session held in full before it had a budget.
#[test]
fn a_flood_of_unaccepted_streams_stays_within_the_budget() {
    let _serial = counting::serial();
    run(|ex| async move {
        let rss0 = counting::rss();
        let heap0 = counting::live();
        let (a, b) = ysmux::pipe();
        let (server, driver) = Session::server(a, Config::default());
        ex.spawn(driver).detach();
        let _tx = flood(&ex, &server, b, 1024, false).await;
        let heap = counting::live() - heap0;
        report("1,024 unaccepted full streams", heap, counting::rss(), rss0);
        let bound = DEFAULT_MEMORY_BUDGET + 8 * 1024 * 1024;
        assert!(
            (heap as usize) < bound,
            "a flood of unaccepted streams holds {heap} bytes (budget {DEFAULT_MEMORY_BUDGET})"
        );
        if let (Some((_, peak)), Some((_, peak0))) = (counting::rss(), rss0) {
            assert!(
                peak - peak0 < 64 << 20,
                "the resident set grew by {} bytes",
                peak - peak0
            );
        }
        // The oldest streams were kept whole, the newest refused: what is accepted now has all
        // its data.
        let mut s = wait("accept", server.accept()).await.expect("accept");
        assert_eq!(s.id(), 1);
        let mut buf = vec![0u8; WINDOW];
        wait("the kept stream's data", s.read_exact(&mut buf))
            .await
            .expect("read");
        assert!(buf.iter().all(|&b| b == 0x5A));
    });
}

/// 100 streams accepted and dropped at once while the peer fills their windows and never answers
/// their FINs: 50 MiB the session held before it dropped a closed stream's data at once.
#[test]
fn streams_closed_by_the_application_hold_nothing() {
    let _serial = counting::serial();
    run(|ex| async move {
        let heap0 = counting::live();
        let rss0 = counting::rss();
        let (a, b) = ysmux::pipe();
        let (server, driver) = Session::server(a, Config::default());
        ex.spawn(driver).detach();
        let _tx = flood(&ex, &server, b, 100, true).await;
        until("every stream accepted and dropped", || {
            server.num_streams() == 100
        })
        .await;
        let heap = counting::live() - heap0;
        report(
            "100 full streams closed by the application",
            heap,
            counting::rss(),
            rss0,
        );
        assert!(heap < 8 << 20, "100 closed streams hold {heap} bytes");
    });
}
