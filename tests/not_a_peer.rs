//! Peers that are not what they seem: a client pointed at something that is no multiplexer server
//! (an echo server, another client, an HTTP server) ends its session with an error that says so,
//! instead of "working" against itself or naming only a byte.

mod common;

use common::*;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use ysmux::{Config, Error, ProtocolError, Session};

/// The session's end, and what an open and a write on it then say.
async fn ended(client: &Session) -> Error {
    let e = wait("the session to end", client.closed())
        .await
        .expect_err("the session must fail");
    // Nothing sent or opened after that "succeeds" against the reflection.
    assert!(client.open().await.is_err());
    e
}

fn reflected(e: &Error) -> bool {
    matches!(e, Error::Protocol(ProtocolError::OfferReflected))
}

#[test]
fn a_client_of_a_plain_tcp_echo_server_learns_it_is_no_multiplexer() {
    run(|ex| async move {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = ex.spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let (r, mut w) = conn.split();
            let _ = futures::io::copy(r, &mut w).await;
        });
        let tcp = smol::net::TcpStream::connect(addr).await.unwrap();
        let (client, driver) = Session::client(tcp, Config::default());
        let driver = ex.spawn(driver);
        // Before the fix this open and an echo through it "succeeded": the client read its own
        // frames back.
        if let Ok(mut s) = client.open().await {
            let _ = s.write_all(b"hello").await;
        }
        let e = ended(&client).await;
        assert!(reflected(&e), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("echo server") && text.contains("another client"),
            "{text}"
        );
        assert!(wait("the driver", driver).await.is_err());
        drop(client);
        wait("the echo server", echo).await;
    });
}

#[test]
fn two_clients_on_one_transport_both_say_so() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let (one, d1) = Session::client(a, Config::default());
        let (two, d2) = Session::client(b, Config::default());
        ex.spawn(d1).detach();
        ex.spawn(d2).detach();
        let (e1, e2) = (ended(&one).await, ended(&two).await);
        assert!(reflected(&e1), "{e1}");
        assert!(reflected(&e2), "{e2}");
    });
}

#[test]
fn an_http_server_is_named_as_one() {
    run(|ex| async move {
        let (a, mut raw) = ysmux::pipe();
        let (client, driver) = Session::client(a, Config::default());
        ex.spawn(driver).detach();
        ex.spawn(async move {
            let mut first = [0u8; 7]; // the client's first frame
            let _ = raw.read_exact(&mut first).await;
            let _ = raw.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            raw
        })
        .detach();
        let e = ended(&client).await;
        assert!(
            matches!(e, Error::Protocol(ProtocolError::UnknownCommand(b'H'))),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("does not speak smux"), "{text}");
        assert!(text.contains("'H': an HTTP peer?"), "{text}");
    });
}
