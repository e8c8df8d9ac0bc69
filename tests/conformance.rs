//! The conformance suite: every behaviour of issue 2 that two sessions of this crate show each
//! other, run over several transports (the in-memory pipe, loopback TCP, a Unix socket pair, TLS,
//! and the pipe trickling one byte per read or write with random `Pending`s: `FlakyTransport`,
//! issue 4) under smol and under tokio. Each behaviour is one generic function in `suite`; the
//! `conformance!` macro instantiates the whole suite once per transport and runtime, so a test is
//! named `<transport>::<behaviour>`.
//!
//! A transport says how much the heavy behaviours move over it (`Transport::SIZES`): a slow one
//! moves less (fewer streams, a little more than one window instead of megabytes), with the same
//! properties checked.

mod common;

use common::*;

mod suite {
    use std::collections::HashSet;
    use std::io;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use futures::io::{AsyncReadExt, AsyncWriteExt};
    use smol::future::FutureExt;
    use smol::Timer;
    use ysmux::{Config, Error, Stream};

    use super::common::*;

    /// The default window: what one stream may have unconfirmed.
    const WINDOW: u64 = 512 * 1024;

    fn kind<T: std::fmt::Debug>(r: io::Result<T>, what: &str) -> io::ErrorKind {
        match r {
            Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
            Err(e) => e.kind(),
        }
    }

    async fn accept(session: &ysmux::Session) -> Stream {
        wait("accept", session.accept()).await.expect("accept")
    }

    async fn both_idle(p: &Pair) {
        until("num_streams() back to 0 on both sides", || {
            p.client.num_streams() == 0 && p.server.num_streams() == 0
        })
        .await;
    }

    /// Many streams at once (64; 8 over a slow transport), each echoing a different amount of
    /// distinct data (some beyond one window, so confirms must flow), every byte checked.
    pub async fn echo_many_streams<T: Transport>(ex: Ex) {
        let (streams, max_len) = (T::SIZES.echo_streams, T::SIZES.echo_max_len);
        let len_of = move |i: u64| 1 + (i * 97_003) % max_len;
        assert!(
            (0..streams).map(len_of).max() > Some(WINDOW),
            "one beyond a window"
        );
        let p = pair::<T>(&ex).await;
        serve_echo(&ex, p.server.clone());
        let mut tasks = Vec::new();
        for i in 0..streams {
            let client = p.client.clone();
            tasks.push(ex.spawn(async move {
                let s = client.open().await.expect("open");
                let len = len_of(i);
                let (mut r, mut w) = s.split();
                futures::join!(
                    write_pattern(&mut w, i, len, 50_000),
                    read_pattern(&mut r, i, len)
                );
                let mut s = r.reunite(w).expect("halves of one stream");
                s.close().await.expect("close");
            }));
        }
        for t in tasks {
            wait("an echo stream", t).await;
        }
        both_idle(&p).await;
    }

    /// The peer never reads stream A while 8 MiB are written to it: A's writer stops after
    /// exactly one window, and stream B meanwhile moves 64 MiB and finishes. Then A is read whole.
    /// (Over a slow transport, A gets a little more than one window and B a little more too.)
    pub async fn flow_control_is_per_stream<T: Transport>(ex: Ex) {
        let a_len = T::SIZES.flow_unread_len;
        let b_len = T::SIZES.flow_other_len;
        assert!(a_len > WINDOW && b_len > WINDOW);
        let p = pair::<T>(&ex).await;
        let mut a = p.client.open().await.expect("open A");
        let mut b = p.client.open().await.expect("open B");
        let mut sa = accept(&p.server).await;
        let mut sb = accept(&p.server).await;
        assert_eq!((sa.id(), sb.id()), (a.id(), b.id()));

        let committed = Arc::new(AtomicU64::new(0));
        let c = committed.clone();
        let a_writer = ex.spawn(async move {
            let mut buf = vec![0u8; 100_000];
            let mut off = 0;
            while off < a_len {
                let n = buf.len().min((a_len - off) as usize);
                fill(1, off, &mut buf[..n]);
                let n = a.write(&buf[..n]).await.expect("write A");
                off += n as u64;
                c.store(off, Ordering::SeqCst);
            }
            a
        });
        until("A's writer to commit one window", || {
            committed.load(Ordering::SeqCst) >= WINDOW
        })
        .await;

        let b_writer = ex.spawn(async move {
            write_pattern(&mut b, 2, b_len, 256 * 1024).await;
            b
        });
        wait(
            "stream B's data while A is not read",
            read_pattern(&mut sb, 2, b_len),
        )
        .await;
        let _b = wait("B's writer", b_writer).await;

        assert_eq!(
            committed.load(Ordering::SeqCst),
            WINDOW,
            "A's writer must stop after exactly one window while nobody reads A"
        );
        assert!(!a_writer.is_finished());

        wait("reading A after all", read_pattern(&mut sa, 1, a_len)).await;
        let _a = wait("A's writer to finish once A is read", a_writer).await;
    }

    /// 256 streams (fewer over a slow transport), each side writing while the other writes, more
    /// than the confirm threshold per stream so confirms cross the data both ways; every byte
    /// checked, nothing hangs.
    pub async fn bidirectional_256_streams<T: Transport>(ex: Ex) {
        let streams = T::SIZES.bidi_streams;
        let len = T::SIZES.bidi_len;
        assert!(len > WINDOW / 4, "beyond the confirm threshold");
        let p = pair::<T>(&ex).await;

        // Both ends of a stream know its id: the opener writes pattern 2*id, the acceptor 2*id+1.
        async fn both_ways(s: Stream, len: u64, mine: u64, theirs: u64) -> Stream {
            let (mut r, mut w) = s.split();
            futures::join!(
                write_pattern(&mut w, mine, len, 32 * 1024),
                read_pattern(&mut r, theirs, len)
            );
            r.reunite(w).expect("halves of one stream")
        }

        let server = p.server.clone();
        let ex2 = ex.clone();
        let acceptor = ex.spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..streams {
                let s = server.accept().await.expect("accept");
                let id = s.id() as u64;
                tasks.push(ex2.spawn(async move {
                    let mut s = both_ways(s, len, 2 * id + 1, 2 * id).await;
                    // The opener closes once it has everything: nothing more must come.
                    let mut extra = [0u8; 1];
                    assert_eq!(
                        s.read(&mut extra).await.expect("read to EOF"),
                        0,
                        "data beyond what was written"
                    );
                }));
            }
            for t in tasks {
                t.await;
            }
        });
        let mut tasks = Vec::new();
        for _ in 0..streams {
            let client = p.client.clone();
            tasks.push(ex.spawn(async move {
                let s = client.open().await.expect("open");
                let id = s.id() as u64;
                let mut s = both_ways(s, len, 2 * id, 2 * id + 1).await;
                s.close().await.expect("close");
            }));
        }
        for t in tasks {
            wait("a stream writing both ways", t).await;
        }
        wait("the accepting side", acceptor).await;
        both_idle(&p).await;
    }

    /// Writes raced against timers on a stream the peer does not read (then reads slowly): the
    /// peer receives exactly the sum of the counts the completed writes reported, in order.
    pub async fn cancel_safe_exact_writes<T: Transport>(ex: Ex) {
        const SEED: u64 = 7;
        let p = pair::<T>(&ex).await;
        let mut a = p.client.open().await.expect("open");
        let mut sa = accept(&p.server).await;

        let mut buf = vec![0u8; T::SIZES.cancel_max_write];
        let mut committed = 0u64;
        let (mut completed, mut cancelled) = (0, 0);
        // Phase 1: the peer reads nothing; once the window is full every write is cancelled.
        for round in 0..60 {
            if race_write(SEED, round, &mut a, &mut buf, &mut committed).await {
                completed += 1;
            } else {
                cancelled += 1;
            }
        }
        assert!(
            committed <= WINDOW,
            "{committed} bytes committed beyond the window"
        );
        assert!(
            completed > 0 && cancelled > 0,
            "completed {completed}, cancelled {cancelled}"
        );

        // Phase 2: the peer reads slowly while the races go on; then we close and it reads to EOF.
        let reader = ex.spawn(async move {
            let mut buf = vec![0u8; 10_000];
            let mut off = 0u64;
            loop {
                let n = sa.read(&mut buf).await.expect("peer read");
                if n == 0 {
                    return off;
                }
                check(SEED, off, &buf[..n], "cancel-safe writes");
                off += n as u64;
                smol::future::yield_now().await;
            }
        });
        for round in 60..400 {
            if race_write(SEED, round, &mut a, &mut buf, &mut committed).await {
                completed += 1;
            } else {
                cancelled += 1;
            }
        }
        wait("closing the written stream", a.close())
            .await
            .expect("close");
        let received = wait("the peer reading to EOF", reader).await;
        assert_eq!(
            received, committed,
            "the peer must get exactly what the writes reported"
        );
        assert!(
            cancelled > 30 && completed > 30,
            "the test must both complete and cancel writes ({completed} completed, {cancelled} cancelled)"
        );
    }

    /// One write of a varying length raced against a timer of a varying (short) delay; returns
    /// whether the write won, adding what it reported to `committed`.
    async fn race_write(
        seed: u64,
        round: u64,
        a: &mut Stream,
        buf: &mut [u8],
        committed: &mut u64,
    ) -> bool {
        let len = 1 + (round as usize * 37_813) % buf.len();
        fill(seed, *committed, &mut buf[..len]);
        let delay = Duration::from_micros((round * 7_919) % 400);
        let data = &buf[..len];
        let r = async { Some(a.write(data).await) }
            .or(async {
                Timer::after(delay).await;
                None
            })
            .await;
        match r {
            Some(Ok(n)) => {
                assert!(n > 0 && n <= len, "a write reported {n} of {len}");
                *committed += n as u64;
                true
            }
            Some(Err(e)) => panic!("write failed: {e}"),
            None => false,
        }
    }

    /// 200,000 open/close cycles opened by the client (70,000 over a slow transport): more opens
    /// than there are ids, so every id the client uses is recycled, and the ids stay below the
    /// number of streams in flight (first-fit); then the server, the passive closer of all of
    /// them, can still open, and so can the client.
    pub async fn id_recycling_200k_cycles<T: Transport>(ex: Ex) {
        let (cycles, batch) = (T::SIZES.recycle_cycles, T::SIZES.recycle_batch);
        assert!(cycles > 65_535, "more opens than ids");
        let p = pair::<T>(&ex).await;
        let server = p.server.clone();
        // Accepts and drops. Streams it is too slow for are refused beyond the backlog: also fine.
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        ex.spawn(async move {
            while let Ok(s) = server.accept().await {
                drop(s);
                count.fetch_add(1, Ordering::SeqCst);
            }
        })
        .detach();
        let mut max_id = 0;
        let mut opened = 0;
        for _ in 0..cycles.div_ceil(batch) {
            let mut streams = Vec::with_capacity(batch);
            for _ in 0..batch {
                let s = match p.client.open().await {
                    Ok(s) => s,
                    Err(e) => panic!("open failed with {} in use: {e}", p.client.num_streams()),
                };
                assert_ne!(s.id(), 0);
                max_id = max_id.max(s.id());
                opened += 1;
                streams.push(s);
            }
            for mut s in streams {
                s.close().await.expect("close");
            }
            // Keep at most a few batches waiting for their FIN to come back.
            if p.client.num_streams() > 4 * batch {
                until("FINs to come back", || p.client.num_streams() <= batch).await;
            }
        }
        assert!(opened > 65_535, "{opened} opens: more than there are ids");
        // At most 4 batches wait for their FIN when a batch opens, and a released id rests for
        // 8,192 releases (so late frames of the original never reach a new stream): first-fit ids
        // stay below 5 batches plus the resting ones.
        let bound = 5 * batch + 8192;
        assert!(
            (max_id as usize) <= bound,
            "id {max_id} with at most {bound} streams in flight or resting: ids not recycled first-fit",
        );
        both_idle(&p).await;
        assert!(accepted.load(Ordering::SeqCst) > 0);

        let mut s = p
            .server
            .open()
            .await
            .expect("the server opens after all those client streams");
        s.write_all(b"still here").await.expect("write");
        let mut t = accept(&p.client).await;
        let mut buf = [0u8; 10];
        wait("read", t.read_exact(&mut buf)).await.expect("read");
        assert_eq!(&buf, b"still here");
        assert_eq!(s.id(), t.id());
        p.client.open().await.expect("and the client still opens");
    }

    /// With 65,535 streams open, the next open fails with `IdsExhausted` (on both sides: the id
    /// space is shared) instead of hanging; once one stream is closed and its FIN has come back,
    /// an open succeeds again, with the freed id. Over every transport, the one moving a byte per
    /// call too: the 65,535 SYNs are only 458,745 bytes.
    pub async fn ids_exhausted_then_recover<T: Transport>(ex: Ex) {
        let (a, b) = T::pair().await;
        // Room for every stream to wait unaccepted: the backlog, and a budget that holds a full
        // window for each (the room a server of this crate grants a client's opens).
        let server_config = Config::default()
            .with_accept_backlog(65_535)
            .with_memory_budget(1 << 40);
        let p = sessions(&ex, a, b, Config::default(), server_config);
        let mut held = Vec::with_capacity(65_535);
        for i in 0..65_535 {
            match p.client.open().await {
                Ok(s) => held.push(s),
                Err(e) => panic!("open {i} failed: {e}"),
            }
            if i % 4096 == 0 {
                smol::future::yield_now().await; // let the driver move the SYNs
            }
        }
        let r = wait("an open with every id in use", p.client.open()).await;
        assert!(
            matches!(r, Err(Error::IdsExhausted)),
            "expected IdsExhausted, got {r:?}"
        );
        until("the server to see all 65,535 streams", || {
            p.server.num_streams() == 65_535
        })
        .await;
        let r = wait("a server open with every id in use", p.server.open()).await;
        assert!(
            matches!(r, Err(Error::IdsExhausted)),
            "expected IdsExhausted, got {r:?}"
        );

        // The server takes every stream out of its backlog (a stream the peer closed still counts
        // in the backlog until accepted, and a full backlog refuses the reopened id).
        let mut theirs = Vec::with_capacity(65_535);
        for _ in 0..65_535 {
            theirs.push(accept(&p.server).await);
        }
        let mut freed = held.swap_remove(12_345);
        let freed_id = freed.id();
        wait("close", freed.close()).await.expect("close");
        let s = wait("an open once a stream is closed", async {
            loop {
                match p.client.open().await {
                    Ok(s) => break s,
                    Err(Error::IdsExhausted) => Timer::after(Duration::from_millis(1)).await,
                    Err(e) => panic!("open failed: {e}"),
                };
            }
        })
        .await;
        assert_eq!(s.id(), freed_id, "the only free id");
        assert!(matches!(p.client.open().await, Err(Error::IdsExhausted)));
    }

    /// Both sides open many streams at the same time: every stream is accepted by exactly one side,
    /// pairs up with exactly one stream of the opener, and no id is shared.
    pub async fn concurrent_opens_never_merge<T: Transport>(ex: Ex) {
        let n = T::SIZES.concurrent_opens;
        let p = pair::<T>(&ex).await;
        let ids: Arc<Mutex<Vec<(char, u16)>>> = Arc::default();

        fn tag(side: u8, i: u32) -> [u8; 8] {
            let mut t = [side, b':', 0, 0, 0, 0, 0, 0];
            t[2..6].copy_from_slice(&i.to_le_bytes());
            t
        }
        // Opens n streams, sends a tag on each and expects it echoed back.
        let opener = |session: ysmux::Session, side: u8| {
            let ids = ids.clone();
            let ex2 = ex.clone();
            ex.spawn(async move {
                let mut tasks = Vec::new();
                for i in 0..n {
                    let mut s = session.open().await.expect("open");
                    ids.lock().unwrap().push((side as char, s.id()));
                    tasks.push(ex2.spawn(async move {
                        s.write_all(&tag(side, i)).await.expect("write tag");
                        let mut back = [0u8; 8];
                        s.read_exact(&mut back).await.expect("read echo");
                        assert_eq!(back, tag(side, i), "a stream paired with the wrong stream");
                        s
                    }));
                    if i % 16 == 0 {
                        smol::future::yield_now().await; // let the other side open meanwhile
                    }
                }
                let mut streams = Vec::new();
                for t in tasks {
                    streams.push(t.await);
                }
                streams
            })
        };
        // Accepts n streams, echoes the tag of each, and returns the tags.
        let acceptor = |session: ysmux::Session, peer: u8| {
            let ids = ids.clone();
            ex.spawn(async move {
                let mut tags = HashSet::new();
                let mut streams = Vec::new();
                for _ in 0..n {
                    let mut s = session.accept().await.expect("accept");
                    ids.lock().unwrap().push(('a', s.id()));
                    let mut t = [0u8; 8];
                    s.read_exact(&mut t).await.expect("read tag");
                    assert_eq!(t[0], peer, "a tag from the wrong side");
                    assert!(tags.insert(t), "tag {t:?} accepted twice");
                    s.write_all(&t).await.expect("echo tag");
                    streams.push(s);
                }
                streams
            })
        };
        let ca = acceptor(p.client.clone(), b'S');
        let sa = acceptor(p.server.clone(), b'C');
        let co = opener(p.client.clone(), b'C');
        let so = opener(p.server.clone(), b'S');
        let c_opened = wait("client opens", co).await;
        let s_opened = wait("server opens", so).await;
        let c_accepted = wait("client accepts", ca).await;
        let s_accepted = wait("server accepts", sa).await;
        let mut client_ids: Vec<u16> = c_opened.iter().chain(&c_accepted).map(|s| s.id()).collect();
        client_ids.sort_unstable();
        client_ids.dedup();
        assert_eq!(
            client_ids.len(),
            2 * n as usize,
            "two streams share an id on the client"
        );
        assert_eq!(p.client.num_streams(), 2 * n as usize);
        until("the server to count 2N streams", || {
            p.server.num_streams() == 2 * n as usize
        })
        .await;
        drop((s_opened, s_accepted));
        drop((c_opened, c_accepted));
        both_idle(&p).await;
    }

    /// After a local close, reads and writes fail with `NotConnected`; the peer sees
    /// end-of-stream, then `BrokenPipe` on write.
    pub async fn close_local_then_read_write_fail<T: Transport>(ex: Ex) {
        let p = pair::<T>(&ex).await;
        let mut s = p.client.open().await.expect("open");
        s.write_all(b"x").await.expect("write");
        let mut t = accept(&p.server).await;
        wait("close", s.close()).await.expect("close");
        let mut buf = [0u8; 4];
        assert_eq!(
            kind(s.read(&mut buf).await, "read after close"),
            io::ErrorKind::NotConnected
        );
        assert_eq!(
            kind(s.write(b"y").await, "write after close"),
            io::ErrorKind::NotConnected
        );
        wait("a second close", s.close())
            .await
            .expect("closing twice is fine");

        let mut got = Vec::new();
        wait("peer reads to EOF", t.read_to_end(&mut got))
            .await
            .expect("read to EOF");
        assert_eq!(got, b"x");
        assert_eq!(
            wait("read at EOF", t.read(&mut buf))
                .await
                .expect("EOF again"),
            0
        );
        assert_eq!(
            kind(t.write(b"z").await, "write after the peer's close"),
            io::ErrorKind::BrokenPipe
        );
        drop(t);
        both_idle(&p).await;
    }

    /// After the peer closes: reads return everything buffered (more than a frame), then
    /// end-of-stream, also for a read already waiting; writes fail with `BrokenPipe`.
    pub async fn close_by_peer_buffered_then_eof<T: Transport>(ex: Ex) {
        let p = pair::<T>(&ex).await;
        let s = p.client.open().await.expect("open");
        let mut t = accept(&p.server).await;
        let reader = ex.spawn(async move {
            let mut s = s;
            let n = read_pattern_to_eof(&mut s, 5).await;
            (s, n)
        });
        write_pattern(&mut t, 5, 300_000, 70_000).await;
        wait("close", t.close()).await.expect("close");
        let (mut s, n) = wait("the waiting read to see EOF", reader).await;
        assert_eq!(n, 300_000, "everything sent before the FIN is read");
        let mut buf = [0u8; 4];
        assert_eq!(s.read(&mut buf).await.expect("EOF stays EOF"), 0);
        assert_eq!(
            kind(s.write(b"late").await, "write after the peer's close"),
            io::ErrorKind::BrokenPipe
        );
        wait("close after the peer's close", s.close())
            .await
            .expect("close");
        both_idle(&p).await;
    }

    /// Dropping a stream that was not closed sends its FIN: the peer reads the data, then EOF.
    pub async fn drop_unclosed_sends_fin<T: Transport>(ex: Ex) {
        let p = pair::<T>(&ex).await;
        let mut s = p.client.open().await.expect("open");
        s.write_all(b"bye").await.expect("write");
        drop(s);
        let mut t = accept(&p.server).await;
        let mut got = Vec::new();
        wait("peer reads to EOF", t.read_to_end(&mut got))
            .await
            .expect("read");
        assert_eq!(got, b"bye");
        // The accepting side drops too: both ids come free.
        let mut u = p.server.open().await.expect("open");
        u.write_all(b"hi").await.expect("write");
        drop(u);
        let mut v = accept(&p.client).await;
        let mut got = Vec::new();
        wait("client reads to EOF", v.read_to_end(&mut got))
            .await
            .expect("read");
        assert_eq!(got, b"hi");
        drop((t, v));
        both_idle(&p).await;
    }

    /// `Session::close` ends every stream on both sides (the peer reads data, then EOF), closes the
    /// transport, and both drivers end cleanly; the closed side's streams, opens and accepts fail.
    pub async fn session_close_ends_everything<T: Transport>(ex: Ex) {
        let p = pair::<T>(&ex).await;
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        for i in 0..3u8 {
            let mut s = p.client.open().await.expect("open");
            s.write_all(&[i; 3]).await.expect("write");
            mine.push(s);
            theirs.push(accept(&p.server).await);
        }
        let waiting = mine.pop().expect("a stream");
        let pending_read = ex.spawn(async move {
            let mut s = waiting;
            let mut buf = [0u8; 4];
            s.read(&mut buf).await
        });
        let client = p.client.clone();
        let pending_accept = ex.spawn(async move { client.accept().await.map(|_| ()) });
        smol::future::yield_now().await;

        wait("session close", p.client.close())
            .await
            .expect("a clean close");
        assert!(p.client.is_closed());
        assert!(wait("the waiting read", pending_read).await.is_err());
        assert!(wait("the waiting accept", pending_accept).await.is_err());
        for s in &mut mine {
            let mut buf = [0u8; 4];
            assert!(s.read(&mut buf).await.is_err(), "read on a closed session");
            assert!(s.write(b"x").await.is_err(), "write on a closed session");
        }
        assert!(matches!(p.client.open().await, Err(Error::SessionClosed)));
        assert!(p.client.accept().await.is_err());

        for (i, mut t) in theirs.into_iter().enumerate() {
            let mut got = Vec::new();
            wait("the peer reads to EOF", t.read_to_end(&mut got))
                .await
                .expect("read");
            assert_eq!(got, vec![i as u8; 3]);
        }
        assert!(wait("the peer's accept ends", p.server.accept())
            .await
            .is_err());
        wait("client driver", p.client_driver)
            .await
            .expect("client driver ends cleanly");
        wait("server driver", p.server_driver)
            .await
            .expect("server driver ends cleanly");
        assert_eq!(p.client.num_streams(), 0);
        assert_eq!(p.server.num_streams(), 0);
    }

    /// When the transport fails, every waiting read, write and accept returns the transport's
    /// error promptly, and so does everything later; the driver returns it too.
    pub async fn transport_error_fails_every_stream<T: Transport>(ex: Ex) {
        let (a, b) = T::pair().await;
        let switch = FailSwitch::default();
        let a = Faulty {
            io: a,
            switch: switch.clone(),
        };
        let p = sessions(&ex, a, b, Config::default(), Config::default());
        let (reads, writes, idle) = failing_streams(&ex, &p).await;
        let client = p.client.clone();
        let pending_accept = ex.spawn(async move { client.accept().await.map(|_| ()) });
        smol::future::yield_now().await;
        // Everything the server sent has reached the client: the failure comes between frames
        // (one inside a frame is `Error::LostMidFrame`; a transport that moves a byte a read
        // could otherwise still be inside the server's last one).
        until("the client to read all the server sent", || {
            p.client.stats().bytes_in == p.server.stats().bytes_out
        })
        .await;

        switch.fail();
        let reset = io::ErrorKind::ConnectionReset;
        assert_eq!(
            kind(wait("the waiting read", reads).await, "waiting read"),
            reset
        );
        assert_eq!(
            kind(wait("the waiting write", writes).await, "waiting write"),
            reset
        );
        let r = wait("the waiting accept", pending_accept).await;
        assert!(
            matches!(r, Err(Error::Io(ref e)) if e.kind() == reset),
            "accept: {r:?}"
        );
        let r = wait("the client driver", p.client_driver).await;
        assert!(
            matches!(r, Err(Error::Io(ref e)) if e.kind() == reset),
            "driver: {r:?}"
        );
        for mut s in idle {
            let mut buf = [0u8; 4];
            assert_eq!(kind(s.read(&mut buf).await, "later read"), reset);
            assert_eq!(kind(s.write(b"x").await, "later write"), reset);
        }
        assert!(matches!(p.client.open().await, Err(Error::Io(_))));
        assert!(p.client.accept().await.is_err());
    }

    /// Streams for the failure tests: one with a read waiting, one with a write waiting for window
    /// (the peer accepted it but does not read), and idle ones with data on the wire both ways.
    async fn failing_streams(
        ex: &Ex,
        p: &Pair,
    ) -> (Task<io::Result<usize>>, Task<io::Result<()>>, Vec<Stream>) {
        let mut r = p.client.open().await.expect("open");
        let mut w = p.client.open().await.expect("open");
        let mut idle = vec![
            p.client.open().await.expect("open"),
            p.client.open().await.expect("open"),
        ];
        for s in &mut idle {
            s.write_all(b"data").await.expect("write");
        }
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(accept(&p.server).await);
        }
        held[3].write_all(b"to the client").await.expect("write");
        let committed = Arc::new(AtomicU64::new(0));
        let c = committed.clone();
        let writes = ex.spawn(async move {
            let buf = vec![9u8; 64 * 1024];
            loop {
                let n = w.write(&buf).await?;
                c.fetch_add(n as u64, Ordering::SeqCst);
            }
        });
        let reads = ex.spawn(async move {
            let mut buf = [0u8; 16];
            r.read(&mut buf).await
        });
        until("the writer to fill its window", || {
            committed.load(Ordering::SeqCst) == WINDOW
        })
        .await;
        ex.spawn(async move {
            let _held = held; // the server keeps its ends open and unread
            futures::future::pending::<()>().await
        })
        .detach();
        (reads, writes, idle)
    }

    /// The peer's session vanishes mid-flight (its driver and transport are dropped, no FIN sent):
    /// every waiting and later read and write on this side fails promptly, and accept fails.
    pub async fn peer_vanishing_fails_every_stream<T: Transport>(ex: Ex) {
        let p = pair::<T>(&ex).await;
        let (reads, writes, idle) = failing_streams(&ex, &p).await;
        let client = p.client.clone();
        let pending_accept = ex.spawn(async move { client.accept().await.map(|_| ()) });
        smol::future::yield_now().await;

        drop(p.server_driver); // cancels the peer's driver, which drops its transport
        assert!(
            wait("the waiting write", writes).await.is_err(),
            "a write waiting for window"
        );
        let r = wait("the waiting read", reads).await;
        assert!(
            r.is_err(),
            "a read waiting on a stream cut off without FIN returned {r:?}"
        );
        assert!(wait("the waiting accept", pending_accept).await.is_err());
        for mut s in idle {
            // What arrived before the cut may still be read; then an error, never end-of-stream.
            let mut buf = vec![0u8; 64];
            let mut got = Vec::new();
            let r = wait("a later read", async {
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => break Ok(0),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) => break Err(e),
                    }
                }
            })
            .await;
            assert!(
                r.is_err(),
                "a stream cut off without FIN read {got:?} then {r:?}"
            );
            assert!(got.is_empty() || got == b"to the client", "{got:?}");
            assert!(s.write(b"x").await.is_err(), "a later write");
        }
        assert!(p.client.open().await.is_err());
        wait("the client driver to end", p.client_driver).await.ok();
    }

    /// `flush` on a stream returns only once everything it wrote has been written to the transport
    /// and the transport flushed.
    pub async fn flush_returns_once_written<T: Transport>(ex: Ex) {
        let (a, b) = T::pair().await;
        let counts = Counts::default();
        let a = Counting {
            io: a,
            counts: counts.clone(),
        };
        let p = sessions(&ex, a, b, Config::default(), Config::default());
        serve_drain(&ex, p.server.clone());
        let mut s = p.client.open().await.expect("open");
        let mut expected = 7u64; // SYN
        for (i, len) in [100_000u64, 1, 65_536, 200_000].into_iter().enumerate() {
            write_pattern(&mut s, i as u64, len, len as usize).await;
            expected += len + 7 * len.div_ceil(65_536);
            wait("flush", s.flush()).await.expect("flush");
            assert!(
                counts.written() >= expected,
                "flush returned before the data was written"
            );
            assert!(
                counts.flushed() >= expected,
                "flush returned before the transport was flushed"
            );
        }
    }
}

/// Instantiates every behaviour of `suite` for each `module => Transport` given.
macro_rules! conformance {
    ($($module:ident => ($rt:ident, $transport:ty)),* $(,)?) => {$(
        mod $module {
            use super::*;
            conformance!(@tests $rt, $transport;
                echo_many_streams,
                flow_control_is_per_stream,
                bidirectional_256_streams,
                cancel_safe_exact_writes,
                id_recycling_200k_cycles,
                ids_exhausted_then_recover,
                concurrent_opens_never_merge,
                close_local_then_read_write_fail,
                close_by_peer_buffered_then_eof,
                drop_unclosed_sends_fin,
                session_close_ends_everything,
                transport_error_fails_every_stream,
                peer_vanishing_fails_every_stream,
                flush_returns_once_written,
            );
        }
    )*};
    (@tests $rt:ident, $transport:ty; $($behaviour:ident),* $(,)?) => {$(
        #[test]
        fn $behaviour() {
            run_on(Rt::$rt, |ex| suite::$behaviour::<$transport>(ex));
        }
    )*};
}

conformance!(
    pipe => (Smol, PipeTransport),
    tcp => (Smol, TcpTransport),
    unix => (Smol, UnixTransport),
    tls => (Smol, TlsTransport),
    tokio_pipe => (Tokio, PipeTransport),
    tokio_tcp => (Tokio, TokioTcpTransport),
    tokio_unix => (Tokio, TokioUnixTransport),
    tokio_tls => (Tokio, TlsTransport),
    flaky => (Smol, FlakyTransport),
    tokio_flaky => (Tokio, FlakyTransport),
);
