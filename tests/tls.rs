//! smux over TLS (futures-rustls, ring provider) over loopback TCP under smol, with a self-signed
//! certificate made at test time: echo and integrity over many concurrent streams.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use futures_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use smol::net::{TcpListener, TcpStream};
use ysmux::{Config, Session};

const STREAMS: usize = 8;
const BYTES: usize = 192 * 1024;

/// A server and a client TLS config that trust one self-signed certificate for "localhost".
fn tls_configs() -> (ServerConfig, ClientConfig) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, client)
}

/// Deterministic, stream-specific bytes, so that a misrouted or reordered frame shows.
fn pattern(stream: usize, len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32 ^ (stream as u32).wrapping_mul(0x85eb_ca6b);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn echo(stream: ysmux::Stream) {
    let (r, mut w) = stream.split();
    futures::io::copy(r, &mut w).await.unwrap();
}

#[test]
fn echo_and_integrity_over_tls() {
    let (server_config, client_config) = tls_configs();
    let run = async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();

        let server = smol::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = TlsAcceptor::from(Arc::new(server_config))
                .accept(tcp)
                .await
                .unwrap();
            let (session, driver) = Session::server(tls, Config::default());
            let driver = smol::spawn(driver);
            // Each accepted stream is echoed by its own task, via the serving helper.
            let echo = tower::service_fn(|s| async {
                echo(s).await;
                Ok::<_, ysmux::Error>(())
            });
            session
                .serve(echo, |f| smol::spawn(f).detach())
                .await
                .unwrap();
            driver.await
        });

        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(Arc::new(client_config))
            .connect(name, tcp)
            .await
            .unwrap();
        let (client, driver) = Session::client(tls, Config::default());
        let driver = smol::spawn(driver);

        let tasks: Vec<_> = (0..STREAMS)
            .map(|i| {
                let client = client.clone();
                smol::spawn(async move {
                    let stream = client.open().await.unwrap();
                    let sent = pattern(i, BYTES);
                    let (mut r, mut w) = stream.split();
                    let writer = async {
                        for chunk in sent.chunks(7 * 1024 + i) {
                            w.write_all(chunk).await.unwrap();
                        }
                        w.flush().await.unwrap();
                    };
                    let mut got = vec![0; BYTES];
                    let reader = r.read_exact(&mut got);
                    let ((), read) = futures::join!(writer, reader);
                    read.unwrap();
                    assert!(got == sent, "stream {i}: echoed bytes differ");
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        client.close().await.unwrap();
        driver.await.unwrap();
        server.await.unwrap();
    };
    let deadline = async {
        smol::Timer::after(Duration::from_secs(30)).await;
        panic!("timed out");
    };
    smol::block_on(futures::future::select(
        run.boxed_local(),
        deadline.boxed_local(),
    ));
}
