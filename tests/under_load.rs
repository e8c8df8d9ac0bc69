//! Behaviours that only show while other streams keep the session busy, and the small semantic
//! corners an `AsyncRead`/`AsyncWrite` user relies on (issue 9 of the tracker: each test here
//! failed on the code before its fix).

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::FutureExt as _;
use ysmux::{Config, Error};

/// A flush completes while other streams keep the transport busy: it waited for the whole output
/// queue to drain once, which never happens while 4 or more streams write without pause.
async fn flush_while_others_write<T: Transport>(ex: Ex) {
    let p = pair::<T>(&ex).await;
    let stop = Arc::new(AtomicBool::new(false));
    serve_drain(&ex, p.server.clone());
    let mut busy = Vec::new();
    for _ in 0..6 {
        let mut s = p.client.open().await.expect("open");
        let stop = stop.clone();
        busy.push(ex.spawn(async move {
            let chunk = vec![0xAB; 64 * 1024];
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                s.write_all(&chunk).await.expect("busy write");
                written += chunk.len() as u64;
            }
            written
        }));
    }
    let mut s = p.client.open().await.expect("open");
    // Let the busy writers fill the queue first.
    until("the busy writers to be under way", || {
        busy.iter().all(|t| !t.is_finished())
    })
    .await;
    smol::Timer::after(std::time::Duration::from_millis(50)).await;
    for round in 0..20 {
        s.write_all(b"x").await.expect("write");
        wait(
            &format!("flush {round} while six streams write without pause"),
            s.flush(),
        )
        .await
        .expect("flush");
    }
    stop.store(true, Ordering::Relaxed);
    for t in busy {
        assert!(wait("a busy writer to stop", t).await > 0);
    }
}

#[test]
fn flush_completes_while_other_streams_write_pipe() {
    run(flush_while_others_write::<PipeTransport>);
}

#[test]
fn flush_completes_while_other_streams_write_tcp() {
    run(flush_while_others_write::<TcpTransport>);
}

#[test]
fn flush_completes_while_other_streams_write_tls_tokio() {
    run_on(Rt::Tokio, flush_while_others_write::<TlsTransport>);
}

#[test]
fn a_zero_length_read_returns_at_once() {
    run(|ex| async move {
        let p = pair::<PipeTransport>(&ex).await;
        let mut s = p.client.open().await.expect("open");
        s.write_all(b"hi").await.expect("write");
        let mut t = wait("accept", p.server.accept()).await.expect("accept");
        let mut empty = [0u8; 0];
        // Nothing buffered on an open stream: Ok(0) at once, not Pending.
        assert_eq!(
            s.read(&mut empty).now_or_never().map(|r| r.expect("read")),
            Some(0)
        );
        // With data buffered, too, and the data stays.
        let mut two = [0u8; 2];
        t.read_exact(&mut two).await.expect("read");
        t.write_all(b"yo").await.expect("write");
        until("the answer to arrive", || {
            let mut probe = [0u8; 0];
            s.read(&mut probe).now_or_never().is_some()
        })
        .await;
        let mut buf = [0u8; 2];
        wait("read", s.read_exact(&mut buf)).await.expect("read");
        assert_eq!(&buf, b"yo");
    });
}

#[test]
fn errors_of_a_cut_stream_and_a_closed_session_are_told_apart() {
    run(|ex| async move {
        // The peer's transport ends with no FIN for the stream: cut off.
        let (a, b) = ysmux::pipe();
        let (client, driver) = ysmux::Session::client(a, Config::default());
        ex.spawn(driver).detach();
        let mut s = client.open().await.expect("open");
        s.write_all(b"x").await.expect("write");
        drop(b);
        let mut buf = [0u8; 8];
        let cut = loop {
            match wait("the cut to show", s.read(&mut buf)).await {
                Ok(0) => panic!("a cut-off stream read end-of-stream"),
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        // Our own session closed: a different error.
        let q = pair::<PipeTransport>(&ex).await;
        let mut u = q.client.open().await.expect("open");
        wait("close", q.client.close()).await.expect("close");
        let closed = u.read(&mut buf).await.expect_err("closed session");
        let inner = |e: &io::Error| {
            e.get_ref()
                .and_then(|e| e.downcast_ref::<Error>())
                .cloned()
                .unwrap_or_else(|| panic!("no ysmux::Error inside {e:?}"))
        };
        assert!(matches!(inner(&closed), Error::SessionClosed), "{closed:?}");
        assert!(
            !matches!(inner(&cut), Error::SessionClosed),
            "a cut-off stream and a locally closed session look the same: {cut:?}"
        );
        assert_ne!(cut.kind(), closed.kind());
    });
}

#[test]
fn writes_after_the_peer_closed_carry_the_error_inside() {
    run(|ex| async move {
        let p = pair::<PipeTransport>(&ex).await;
        let mut s = p.client.open().await.expect("open");
        s.write_all(b"x").await.expect("write");
        let mut t = wait("accept", p.server.accept()).await.expect("accept");
        t.close().await.expect("close");
        let mut buf = [0u8; 1];
        assert_eq!(wait("EOF", s.read(&mut buf)).await.expect("read"), 0);
        let e = s
            .write(b"y")
            .await
            .expect_err("write after the peer closed");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(e
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .is_some());
    });
}

#[test]
fn a_driver_polled_after_it_failed_returns_the_same_error() {
    run(|_ex| async move {
        let (a, mut b) = ysmux::pipe();
        let (_session, mut driver) = ysmux::Session::server(a, Config::default());
        b.write_all(&[0xEE, 0, 0, 0, 0, 0, 0])
            .await
            .expect("raw write");
        let first = wait("the driver to fail", &mut driver).await;
        assert!(matches!(first, Err(Error::Protocol(_))), "{first:?}");
        let again = (&mut driver).now_or_never().expect("ready at once");
        assert!(matches!(again, Err(Error::Protocol(_))), "{again:?}");
    });
}
