//! A session under tokio: tokio's TCP streams enter through `tokio_util::compat`, the drivers are
//! tokio tasks, and a stream goes back out through compat into tokio's own io utilities.

use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

const WAIT: Duration = Duration::from_secs(20);

async fn wait<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_under_tokio_through_compat() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (client_io, server_io) = wait("connect", async {
        tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept())
    })
    .await;
    let client_io = client_io.expect("connect").compat();
    let server_io = server_io.expect("accept").0.compat();

    let (client, driver) = ysmux::Session::client(client_io, ysmux::Config::default());
    let client_driver = tokio::spawn(driver);
    let (server, driver) = ysmux::Session::server(server_io, ysmux::Config::default());
    let server_driver = tokio::spawn(driver);

    // The server echoes with tokio's own copy, through compat back to tokio's io traits.
    let echo = tokio::spawn(async move {
        let mut tasks = Vec::new();
        while let Ok(s) = server.accept().await {
            tasks.push(tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(FuturesAsyncReadCompatExt::compat(s));
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if w.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("echo task");
        }
    });

    // Several streams at once, each more than a window, on tokio's worker threads.
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let s = client.open().await.expect("open");
            let data: Vec<u8> = (0..700_000u32)
                .map(|j| (j as u8).wrapping_mul(31) ^ i)
                .collect();
            let (mut r, mut w) = s.split();
            let expected = data.clone();
            let writer = async move {
                w.write_all(&data).await.expect("write");
                w
            };
            let reader = async move {
                let mut got = vec![0u8; expected.len()];
                r.read_exact(&mut got).await.expect("read");
                assert!(got == expected, "stream {i}: echoed data differs");
                r
            };
            let (w, r) = tokio::join!(writer, reader);
            let mut s = r.reunite(w).expect("one stream");
            s.close().await.expect("close");
        }));
    }
    for t in tasks {
        wait("a stream echoing under tokio", t)
            .await
            .expect("stream task");
    }
    wait("session close", client.close()).await.expect("close");
    wait("client driver", client_driver)
        .await
        .expect("join")
        .expect("clean end");
    wait("server driver", server_driver)
        .await
        .expect("join")
        .expect("clean end");
    wait("echo server", echo).await.expect("echo");
}
