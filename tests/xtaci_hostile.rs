//! Hostile input on xtaci/smux's wire, from a scripted raw peer: each ends the session with an
//! error that names what the peer broke, and loses nothing already accepted.

mod common;

use common::*;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use ysmux::{Config, Error, Protocol, ProtocolError, Session};

/// A server of `protocol` gets `bytes` from a raw client: returns how the session ended, and what
/// the stream it had accepted before (id 3, with "kept" on it) could still read.
fn server_sees(protocol: Protocol, bytes: Vec<u8>) -> (Error, Vec<u8>) {
    let out = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out2 = out.clone();
    run(|ex| async move {
        let (a, mut raw) = ysmux::pipe();
        let (server, driver) = Session::server(a, Config::default().with_protocol(protocol));
        let driver = ex.spawn(driver);
        let version = if protocol == Protocol::Xtaci1 { 1 } else { 2 };
        raw.write_all(&xtaci_frame(version, SYN, 3, &[]))
            .await
            .unwrap();
        raw.write_all(&xtaci_frame(version, PSH, 3, b"kept"))
            .await
            .unwrap();
        let mut s = wait("accept", server.accept()).await.expect("accept");
        let mut kept = [0u8; 4];
        wait("read", s.read_exact(&mut kept)).await.expect("read");
        raw.write_all(&bytes).await.unwrap();
        let e = wait("the session to end", driver)
            .await
            .expect_err("must fail");
        *out2.lock().unwrap() = Some((e, kept.to_vec()));
        drop(raw);
    });
    let result = out.lock().unwrap().take();
    result.expect("ran")
}

fn protocol_error(e: &Error) -> ProtocolError {
    match e {
        Error::Protocol(p) => *p,
        other => panic!("not a protocol error: {other:?}"),
    }
}

#[test]
fn a_frame_of_the_other_version_ends_the_session() {
    let (e, kept) = server_sees(Protocol::Xtaci1, xtaci_frame(2, XNOP, 0, &[]));
    assert_eq!(
        protocol_error(&e),
        ProtocolError::WrongVersion { version: 2 }
    );
    assert!(e.to_string().contains("version 2"), "{e}");
    assert_eq!(kept, b"kept");
}

#[test]
fn an_upd_in_version_1_ends_the_session() {
    let (e, _) = server_sees(Protocol::Xtaci1, xtaci_frame(1, XUPD, 3, &[0; 8]));
    assert_eq!(protocol_error(&e), ProtocolError::UpdInVersion1);
}

#[test]
fn data_beyond_the_window_on_version_2_ends_the_session() {
    // The window is 512 KiB by default; 9 frames of 65,535 bytes pass it.
    let mut flood = Vec::new();
    for _ in 0..9 {
        flood.extend(xtaci_frame(2, PSH, 3, &[0u8; 65_535]));
    }
    let (e, _) = server_sees(Protocol::Xtaci2, flood);
    assert!(
        matches!(
            protocol_error(&e),
            ProtocolError::WindowExceeded { stream: 3, .. }
        ),
        "{e}"
    );
}

#[test]
fn a_syn_with_the_servers_parity_ends_the_session() {
    let (e, _) = server_sees(Protocol::Xtaci2, xtaci_frame(2, SYN, 4, &[]));
    assert_eq!(protocol_error(&e), ProtocolError::WrongParity { stream: 4 });
}

#[test]
fn a_fin_with_a_length_ends_the_session() {
    let (e, _) = server_sees(Protocol::Xtaci2, xtaci_frame(2, FIN, 3, b"xx"));
    assert_eq!(
        protocol_error(&e),
        ProtocolError::BadLength { command: 1, len: 2 }
    );
}

#[test]
fn a_detecting_server_refuses_what_is_no_smux() {
    run(|ex| async move {
        let (a, mut raw) = ysmux::pipe();
        let config = Config::default().with_protocol(Protocol::Detect);
        let (_server, driver) = Session::server(a, config);
        let driver = ex.spawn(driver);
        raw.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
        let e = wait("the session to end", driver)
            .await
            .expect_err("must fail");
        assert_eq!(protocol_error(&e), ProtocolError::NotSmux { first: b'S' });
        assert!(e.to_string().contains("not a smux peer"), "{e}");
    });
}

#[test]
fn a_client_cannot_detect() {
    run(|ex| async move {
        let (a, _b) = ysmux::pipe();
        let config = Config::default().with_protocol(Protocol::Detect);
        let (client, driver) = Session::client(a, config);
        let r = wait("the driver", ex.spawn(driver)).await;
        assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
        assert!(client.open().await.is_err());
    });
}

#[test]
fn ping_is_unsupported_on_xtaci_and_the_keepalive_sends_nops() {
    run(|ex| async move {
        let (a, b) = ysmux::pipe();
        let x = Config::default().with_protocol(Protocol::Xtaci2);
        let p = sessions(&ex, a, b, x.clone(), x);
        assert!(matches!(p.client.ping().await, Err(Error::Unsupported(_))));
    });
}
