//! The tower integration: `Session::opener` under middleware, its readiness at the stream limit,
//! after the session ends, and `Session::serve` with a service that is slow to become ready.

mod common;

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use tower::{Service, ServiceBuilder, ServiceExt};
use ysmux::{Config, Error};

use common::{bounded, tokio_pipe_pair};

/// Bound on every wait in this file: a hang fails the test instead of stalling the run.
const LIMIT: Duration = Duration::from_secs(10);

/// A waker that records whether it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    fn woken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Polls `poll_ready` once with a recording waker.
fn poll_ready_once<S: Service<()>>(svc: &mut S, flag: &Arc<Flag>) -> Poll<Result<(), S::Error>> {
    let waker = Waker::from(flag.clone());
    svc.poll_ready(&mut Context::from_waker(&waker))
}

/// Waits (bounded) until `flag` is woken.
async fn woken(flag: &Flag) {
    bounded(async {
        while !flag.woken() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// Echoes one stream until it ends.
async fn echo(stream: ysmux::Stream) {
    let (r, mut w) = stream.split();
    let _ = futures::io::copy(r, &mut w).await;
}

async fn round_trip(stream: &mut ysmux::Stream, msg: &[u8]) {
    stream.write_all(msg).await.unwrap();
    let mut buf = vec![0; msg.len()];
    bounded(stream.read_exact(&mut buf)).await.unwrap();
    assert_eq!(buf, msg);
}

#[tokio::test]
async fn opener_under_concurrency_limit_and_timeout() {
    let (client, server) = tokio_pipe_pair(Config::default(), Config::default());
    tokio::spawn(server.serve(
        tower::service_fn(|s| async {
            echo(s).await;
            Ok::<_, Error>(())
        }),
        |f| {
            tokio::spawn(f);
        },
    ));

    let mut svc = ServiceBuilder::new()
        .timeout(LIMIT)
        .concurrency_limit(4)
        .service(client.opener());
    let mut streams = Vec::new();
    for i in 0..10u8 {
        let mut s = bounded(ServiceExt::<()>::ready(&mut svc))
            .await
            .unwrap()
            .call(())
            .await
            .unwrap();
        round_trip(&mut s, &[i; 100]).await;
        streams.push(s);
    }
    let mut ids: Vec<u16> = streams.iter().map(|s| s.id()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 10, "ids in use twice: {ids:?}");
}

#[tokio::test]
async fn buffer_waits_at_the_stream_limit_and_resumes_on_close() {
    let (client, server) =
        tokio_pipe_pair(Config::default().with_max_streams(2), Config::default());
    tokio::spawn(server.serve(
        tower::service_fn(|s| async {
            echo(s).await;
            Ok::<_, Error>(())
        }),
        |f| {
            tokio::spawn(f);
        },
    ));

    let svc = tower::buffer::Buffer::new(client.opener(), 8);
    let mut first = bounded(svc.clone().oneshot(())).await.unwrap();
    let second = bounded(svc.clone().oneshot(())).await.unwrap();
    round_trip(&mut first, b"one").await;

    // A third open waits behind the buffer: the opener is not ready at the limit.
    let mut third = Box::pin(svc.clone().oneshot(()));
    let woken = common::assert_pending(third.as_mut(), "an open beyond max_streams");
    assert_eq!(woken.get(), 0);

    // Closing a stream (the server closes its end when it sees EOF) releases its id.
    drop(second);
    let mut third = bounded(third).await.unwrap();
    round_trip(&mut third, b"three").await;
    round_trip(&mut first, b"still there").await;
}

#[tokio::test]
async fn poll_ready_is_pending_at_the_limit_and_woken_by_a_close() {
    let (client, server) =
        tokio_pipe_pair(Config::default().with_max_streams(1), Config::default());
    let mut a = client.opener();
    let flag = Arc::new(Flag::default());
    assert!(matches!(
        poll_ready_once(&mut a, &flag),
        Poll::Ready(Ok(()))
    ));
    // Ready again without a call: still the same reservation, no second one taken.
    assert!(matches!(
        poll_ready_once(&mut a, &flag),
        Poll::Ready(Ok(()))
    ));

    // A clone holds no reservation; the limit is taken by `a`'s.
    let mut b = a.clone();
    let b_flag = Arc::new(Flag::default());
    assert!(poll_ready_once(&mut b, &b_flag).is_pending());

    // Dropping a ready opener gives its reservation back and wakes the waiter.
    drop(a);
    woken(&b_flag).await;
    assert!(matches!(
        poll_ready_once(&mut b, &b_flag),
        Poll::Ready(Ok(()))
    ));
    let mut stream = b.call(()).await.unwrap();

    // At the limit with an open stream: pending until that stream closes. (A FIN is a full close:
    // the peer answers it at once, and the id is released when that answer arrives.)
    let mut c = b.clone();
    let c_flag = Arc::new(Flag::default());
    assert!(poll_ready_once(&mut c, &c_flag).is_pending());
    assert!(poll_ready_once(&mut b, &c_flag).is_pending());
    let peer = bounded(server.accept()).await.unwrap();
    assert_eq!(peer.id(), stream.id());
    assert!(!c_flag.woken());
    stream.close().await.unwrap();
    woken(&c_flag).await;
    bounded(poll_fn(|cx| Service::<()>::poll_ready(&mut c, cx)))
        .await
        .unwrap();
    let stream = c.call(()).await.unwrap();
    assert_eq!(client.num_streams(), 1);
    drop(stream);
}

#[tokio::test]
async fn errors_after_the_session_ends() {
    let (client, _server) =
        tokio_pipe_pair(Config::default().with_max_streams(1), Config::default());
    let mut holder = client.opener();
    bounded(ServiceExt::<()>::ready(&mut holder)).await.unwrap();

    // A waiter pending at the limit is woken by the end of the session, with its error.
    let mut waiter = client.opener();
    let flag = Arc::new(Flag::default());
    assert!(poll_ready_once(&mut waiter, &flag).is_pending());
    bounded(client.close()).await.unwrap();
    woken(&flag).await;
    assert!(matches!(
        poll_ready_once(&mut waiter, &flag),
        Poll::Ready(Err(Error::SessionClosed))
    ));

    // A reservation made before the end does not open a stream after it.
    assert!(matches!(holder.call(()).await, Err(Error::SessionClosed)));
    let mut fresh = client.opener();
    assert!(matches!(
        ServiceExt::<()>::ready(&mut fresh).await,
        Err(Error::SessionClosed)
    ));
}

#[tokio::test]
async fn call_without_poll_ready_is_an_error() {
    let (client, _server) = tokio_pipe_pair(Config::default(), Config::default());
    let mut opener = client.opener();
    let err = opener.call(()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::Other),
        "{err}"
    );
    assert!(err.to_string().contains("poll_ready"), "{err}");
    assert_eq!(
        client.num_streams(),
        0,
        "opened a stream without a reservation"
    );
}

#[tokio::test]
async fn serve_accepts_only_while_the_service_is_ready() {
    let backlog = 2;
    let (client, server) = tokio_pipe_pair(
        Config::default(),
        Config::default().with_accept_backlog(backlog),
    );
    // A mock service: not ready until the handle allows requests.
    let (svc, mut handle) = tower_test::mock::pair::<ysmux::Stream, ()>();
    handle.allow(0);
    let serving = tokio::spawn(server.serve(svc, |f| {
        tokio::spawn(f);
    }));

    // The grant of room to open (the server's backlog: 2) has arrived once a ping came back.
    bounded(client.ping()).await.unwrap();
    // The service is not ready: opened streams wait in the server's backlog...
    let mut waiting = Vec::new();
    for i in 0..backlog {
        let mut s = client.open().await.unwrap();
        s.write_all(&[i as u8]).await.unwrap();
        waiting.push(s);
    }
    // ...and one more than the backlog holds waits at the opener for room, rather than being
    // refused by the peer.
    let opener = client.clone();
    let mut third = tokio::spawn(async move { opener.open().await });
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut third)
            .await
            .is_err(),
        "an open past the peer's backlog did not wait"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), handle.next_request())
            .await
            .is_err(),
        "a stream reached the service before it was ready"
    );

    // Once ready, the waiting streams are served in order, each with its data; the third open
    // gets its room then.
    let mut buf = [0; 1];
    handle.allow(backlog as u64 + 1);
    for (i, sent) in waiting.iter().enumerate() {
        let (mut stream, respond) = bounded(handle.next_request()).await.unwrap();
        assert_eq!(stream.id(), sent.id());
        bounded(stream.read_exact(&mut buf)).await.unwrap();
        assert_eq!(buf, [i as u8]);
        respond.send_response(());
    }
    let mut third = bounded(third).await.unwrap().unwrap();
    third.write_all(&[9]).await.unwrap();
    let (mut stream, respond) = bounded(handle.next_request()).await.unwrap();
    assert_eq!(stream.id(), third.id());
    bounded(stream.read_exact(&mut buf)).await.unwrap();
    assert_eq!(buf, [9]);
    respond.send_response(());

    // Closing the session ends serving cleanly.
    bounded(client.close()).await.unwrap();
    bounded(serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn poll_ready_is_pending_while_ids_run_out_and_woken_by_a_release() {
    // With the default stream limit, ids run out first: the peer holds one, this side the rest.
    // That is as transient as the limit, so `poll_ready` waits instead of failing (an error
    // would poison a `tower::buffer::Buffer` for good).
    let (client, server) = tokio_pipe_pair(Config::default(), Config::default());
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    let acceptor = server.clone();
    tokio::spawn(async move {
        while let Ok(s) = acceptor.accept().await {
            keep.lock().unwrap().push(s);
        }
    });
    let _theirs = server.open().await.unwrap();
    let _accepted = bounded(client.accept()).await.unwrap(); // its SYN has arrived
    let mut mine = Vec::with_capacity(65_534);
    for _ in 0..65_534 {
        mine.push(bounded(client.open()).await.unwrap());
    }
    assert!(matches!(client.open().await, Err(Error::IdsExhausted)));
    let mut opener = client.opener();
    let flag = Arc::new(Flag::default());
    assert!(
        poll_ready_once(&mut opener, &flag).is_pending(),
        "poll_ready failed instead of waiting"
    );
    mine.pop(); // closes it: its id comes back once the peer answers the FIN
    woken(&flag).await;
    bounded(poll_fn(|cx| Service::<()>::poll_ready(&mut opener, cx)))
        .await
        .unwrap();
    let s = opener.call(()).await.unwrap();
    assert_ne!(s.id(), 0);
    drop(mine);
    held.lock().unwrap().clear();
}
