//! The `tokio` feature: `Stream` is tokio's `AsyncRead + AsyncWrite` itself, so tokio codecs,
//! tokio's io utilities, hyper-util's `TokioIo` and tower's `MakeConnection` take it directly.
//! (Without the feature these tests compile to nothing; run with `--features tokio`.)
#![cfg(feature = "tokio")]

mod common;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Framed, LengthDelimitedCodec, LinesCodec};
use ysmux::Config;

use common::{bounded, tokio_pipe_pair};

#[tokio::test]
async fn codecs_frame_a_stream_directly() {
    let (client, server) = tokio_pipe_pair(Config::default(), Config::default());
    let echo = tokio::spawn(async move {
        let mut lines = Framed::new(server.accept().await.unwrap(), LinesCodec::new());
        while let Some(line) = lines.next().await {
            lines.send(line.unwrap().to_uppercase()).await.unwrap();
        }
    });

    let mut lines = Framed::new(client.open().await.unwrap(), LinesCodec::new());
    for i in 0..100 {
        lines.send(format!("line {i}")).await.unwrap();
        let back = bounded(lines.next()).await.unwrap().unwrap();
        assert_eq!(back, format!("LINE {i}"));
    }
    // Shutdown closes the stream (a full close): the peer's reader ends and its task finishes.
    drop(lines);
    bounded(echo).await.unwrap();
}

#[tokio::test]
async fn large_frames_and_io_utilities() {
    let (client, server) = tokio_pipe_pair(Config::default(), Config::default());
    let msg: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let expected = msg.clone();
    let reader = tokio::spawn(async move {
        let mut frames = Framed::new(server.accept().await.unwrap(), LengthDelimitedCodec::new());
        let frame = frames.next().await.unwrap().unwrap();
        assert!(frame[..] == expected[..], "frame differs");
        // Reply with the io utilities on the same stream.
        let mut stream = frames.into_inner();
        stream.write_all(b"got it").await.unwrap();
        stream.flush().await.unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap(); // until the client closes
        assert!(rest.is_empty());
    });

    let mut frames = Framed::new(client.open().await.unwrap(), LengthDelimitedCodec::new());
    frames.send(hyper::body::Bytes::from(msg)).await.unwrap();
    let mut stream = frames.into_inner();
    let mut buf = [0; 6];
    bounded(stream.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"got it");
    stream.shutdown().await.unwrap();
    bounded(reader).await.unwrap();
}

#[tokio::test]
async fn opener_is_a_make_connection() {
    use tower::make::MakeConnection;
    use tower::ServiceExt;

    let (client, server) = tokio_pipe_pair(Config::default(), Config::default());
    let mut make = client.opener();
    let mut conn = {
        ServiceExt::<()>::ready(&mut make).await.unwrap();
        bounded(make.make_connection(())).await.unwrap()
    };
    conn.write_all(b"made").await.unwrap();
    let mut accepted = bounded(server.accept()).await.unwrap();
    let mut buf = [0; 4];
    bounded(accepted.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"made");
}

#[tokio::test]
async fn hyper_through_tokio_io_without_compat() {
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper_util::rt::TokioIo;

    let (client, server) = tokio_pipe_pair(Config::default(), Config::default());
    tokio::spawn(async move {
        let stream = server.accept().await.unwrap();
        let svc = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
            let body = format!("you asked for {}", req.uri().path());
            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await
            .unwrap();
    });

    let stream = client.open().await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    for path in ["/a", "/b"] {
        let req = hyper::Request::get(path)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = bounded(sender.send_request(req)).await.unwrap();
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("you asked for {path}"));
    }
}

#[tokio::test]
async fn split_halves_are_tokio_io_too() {
    let (client, server) = tokio_pipe_pair(Config::default(), Config::default());
    tokio::spawn(async move {
        let (mut r, mut w) = server.accept().await.unwrap().into_split();
        tokio::io::copy(&mut r, &mut w).await.unwrap();
    });
    let (mut r, mut w) = client.open().await.unwrap().into_split();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 200_000];
        r.read_exact(&mut buf).await.unwrap();
        buf
    });
    let msg: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    w.write_all(&msg).await.unwrap();
    w.flush().await.unwrap();
    assert!(bounded(reader).await.unwrap() == msg, "echo differs");
    w.shutdown().await.unwrap();
}
