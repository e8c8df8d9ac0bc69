//! The main job, end to end: a server and a client over one loopback TCP connection, many streams
//! moving data both ways at once, while one stream is never read (and blocks nobody).
//!
//! Run: `cargo run --release --example demo` (from the repository's root; the demo is a package
//! of its own, `demo/`, so that it builds only the crate and smol)

use std::time::Instant;

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use ysmux::{Config, Session};

const STREAMS: usize = 64;
const BYTES_PER_STREAM: usize = 4 << 20;

/// The byte at `offset` of stream number `n`: every stream's contents differ and are checkable.
fn pattern(n: usize, offset: usize) -> u8 {
    (offset.wrapping_mul(31) ^ n.wrapping_mul(131)) as u8
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        println!("server listening on {addr}");

        // Server: echo every stream it accepts.
        let server = smol::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            let (session, driver) = Session::server(tcp, Config::default());
            let driver = smol::spawn(driver);
            // The first stream the client opens is the one nobody reads: hold it, never read it.
            let unread = session.accept().await?;
            let mut tasks = Vec::new();
            for _ in 0..STREAMS {
                let stream = session.accept().await?;
                tasks.push(smol::spawn(async move {
                    let (mut r, mut w) = stream.into_split();
                    smol::io::copy(&mut r, &mut w).await
                }));
            }
            let echoed = tasks.len();
            for t in tasks {
                t.await?;
            }
            drop(unread);
            drop(session);
            driver.await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(echoed)
        });

        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        // Ask first whether the peer is a multiplexer at all (the VRM probe), bounded by a timer.
        let is_mux = {
            let probe = smol::future::or(async { ysmux::is_smux(&mut tcp).await.ok() }, async {
                smol::Timer::after(std::time::Duration::from_secs(2)).await;
                None
            });
            probe.await == Some(true)
        };
        println!("client connected; the VRM probe says the server is a multiplexer: {is_mux}");
        let (session, driver) = Session::client(tcp, Config::default());
        let driver = smol::spawn(driver);

        // A stream whose reader never reads: it fills its own window and stops, alone.
        let mut stalled = session.open().await?;
        let stalled_writer = smol::spawn(async move {
            let chunk = vec![0u8; 64 * 1024];
            let mut sent = 0usize;
            // Write until a write has waited 300 ms: the window is full and nobody confirms.
            // A write cancelled while pending committed nothing, so `sent` is exact.
            while let Some(Ok(n)) =
                smol::future::or(async { Some(stalled.write(&chunk).await) }, async {
                    smol::Timer::after(std::time::Duration::from_millis(300)).await;
                    None
                })
                .await
            {
                sent += n;
            }
            (stalled, sent)
        });

        let start = Instant::now();
        let mut tasks = Vec::new();
        for n in 0..STREAMS {
            let stream = session.open().await?;
            tasks.push(smol::spawn(async move {
                let id = stream.id();
                let (mut r, mut w) = stream.into_split();
                let writer = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut off = 0;
                    while off < BYTES_PER_STREAM {
                        let len = buf.len().min(BYTES_PER_STREAM - off);
                        for (i, b) in buf[..len].iter_mut().enumerate() {
                            *b = pattern(n, off + i);
                        }
                        w.write_all(&buf[..len]).await?;
                        off += len;
                    }
                    Ok::<_, std::io::Error>(w)
                };
                let reader = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut off = 0;
                    while off < BYTES_PER_STREAM {
                        let got = r.read(&mut buf).await?;
                        if got == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        for (i, &b) in buf[..got].iter().enumerate() {
                            if b != pattern(n, off + i) {
                                return Err(std::io::Error::other(format!(
                                    "stream {id}: wrong byte at {}",
                                    off + i
                                )));
                            }
                        }
                        off += got;
                    }
                    Ok(())
                };
                let (w, ()) = smol::future::try_zip(writer, reader).await?;
                let mut stream = r.reunite(w).expect("halves of one stream");
                stream.close().await?;
                Ok::<_, std::io::Error>(id)
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await?);
        }
        let secs = start.elapsed().as_secs_f64();
        let total = (STREAMS * BYTES_PER_STREAM * 2) as f64;
        println!(
            "{STREAMS} streams (ids {}..={}) echoed {} MiB each way, every byte checked, in {:.2} s: {:.0} MiB/s through the session",
            ids.iter().min().unwrap(),
            ids.iter().max().unwrap(),
            (STREAMS * BYTES_PER_STREAM) >> 20,
            secs,
            total / secs / (1 << 20) as f64
        );
        let (stalled, sent) = stalled_writer.await;
        println!(
            "stream {} was never read: its writer stopped after {} KiB (one window), and blocked nobody",
            stalled.id(),
            sent >> 10
        );
        drop(stalled);
        session.close().await?;
        driver.await?;
        let echoed = server.await.map_err(|e| e.to_string())?;
        println!("session closed cleanly; the server accepted {echoed} streams");
        Ok(())
    })
}
