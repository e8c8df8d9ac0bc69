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
