//! Memory: an idle stream costs little on each side, and receive buffers shrink back once read.
//!
//! A counting global allocator measures the bytes live on the heap; this file is its own test
//! binary so no other test disturbs the count, and its tests run one at a time under a lock.

mod common;

use common::counting::{self, Counting};
use common::*;
use futures::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn an_idle_stream_pair_costs_well_under_a_kilobyte() {
    let _serial = counting::serial();
    run(|ex| async move {
        let p = pair::<PipeTransport>(&ex).await;
        let (client, server) = (&p.client, &p.server);
        // Warm up: let the drivers allocate their fixed buffers.
        let s = client.open().await.unwrap();
        let t = server.accept().await.unwrap();
        drop((s, t));
        const N: usize = 10_000;
        let mut opened = Vec::with_capacity(N);
        let mut accepted = Vec::with_capacity(N);
        let before = counting::live();
        for _ in 0..N {
            opened.push(client.open().await.unwrap());
            accepted.push(server.accept().await.unwrap());
        }
        // Let the drivers settle (every SYN written and read).
        smol::future::yield_now().await;
        let per_pair = (counting::live() - before) as usize / N;
        println!("heap per idle stream pair (both ends, handles included): {per_pair} bytes");
        assert!(
            per_pair < 1024,
            "an idle stream pair costs {per_pair} bytes"
        );
        drop((opened, accepted));
    });
}

#[test]
fn receive_buffers_shrink_back_after_reading() {
    let _serial = counting::serial();
    run(|ex| async move {
        let p = pair::<PipeTransport>(&ex).await;
        let (client, server) = (&p.client, &p.server);
        let mut s = client.open().await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut t = server.accept().await.unwrap();
        let mut one = [0u8; 1];
        t.read_exact(&mut one).await.unwrap();
        let before = counting::live();
        // Fill the receiver's window, then read it all.
        let data = vec![7u8; 500 * 1024];
        s.write_all(&data).await.unwrap();
        s.flush().await.unwrap();
        while server.num_streams() == 1 && counting::live() - before < 400 * 1024 {
            smol::future::yield_now().await;
        }
        let full = counting::live() - before;
        assert!(
            full >= 400 * 1024,
            "the waiting data is buffered ({full} bytes)"
        );
        let mut buf = vec![0u8; 500 * 1024];
        t.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, data);
        drop(buf);
        drop(data);
        let after = counting::live() - before;
        println!("buffered {full} bytes while waiting, {after} after reading");
        // The stream holds nothing once read; the session keeps at most one window (512 KiB, the
        // windows here never grow) of drained receive chunks for reuse (src/core/recv.rs), so a
        // stream that keeps receiving does not allocate for every window.
        assert!(
            after <= 512 * 1024 + 16 * 1024,
            "{after} bytes still held after reading everything"
        );
    });
}

/// The sender's write buffers shrink back too: once the session is idle, the driver's buffer
/// and the output queue it hands back to the core keep at most 64 KiB each, however far a burst
/// grew them (the driver gives the queue back as it returns: `driver/mod.rs`, `Unreported`).
#[test]
fn write_buffers_shrink_back_once_idle() {
    let _serial = counting::serial();
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        // Windows that never grow: the receiver's pool then keeps one window (see above).
        let big = ysmux::Config::default()
            .with_write_buffer(4 << 20)
            .with_max_window(1024);
        let p = sessions(&ex, a, b, big.clone(), big);
        let (client, server) = (&p.client, &p.server);
        let streams = 16;
        let each = 1 << 20;
        let mut opened = Vec::new();
        for _ in 0..streams {
            let mut s = client.open().await.unwrap();
            s.write_all(b"x").await.unwrap();
            opened.push(s);
        }
        let mut readers = Vec::new();
        for _ in 0..streams {
            let mut t = server.accept().await.unwrap();
            readers.push(ex.spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0;
                while total < 1 + each {
                    total += t.read(&mut buf).await.unwrap();
                }
                t
            }));
        }
        let before = counting::live();
        let writers: Vec<_> = opened
            .into_iter()
            .map(|mut s| {
                ex.spawn(async move {
                    s.write_all(&vec![7u8; each]).await.unwrap();
                    s.flush().await.unwrap();
                    s
                })
            })
            .collect();
        let mut kept = Vec::new();
        for w in writers {
            kept.push(w.await);
        }
        for r in readers {
            kept.push(r.await);
        }
        // Let both drivers finish their last rounds and return (bounded: about 2 s at most).
        let bound = 512 * 1024 + 2 * 64 * 1024 + 64 * 1024;
        let mut after = counting::live().saturating_sub(before);
        for _ in 0..200 {
            if after <= bound {
                break;
            }
            smol::Timer::after(std::time::Duration::from_millis(10)).await;
            after = counting::live().saturating_sub(before);
        }
        println!(
            "{after} bytes held once idle after moving {} MiB",
            (streams * each) >> 20
        );
        // The receiver keeps up to one window of drained chunks per session (512 KiB,
        // `receive_buffers_shrink_back_after_reading`); the sender's buffers, 64 KiB each.
        assert!(after <= bound, "{after} bytes still held once idle");
        drop(kept);
    });
}
