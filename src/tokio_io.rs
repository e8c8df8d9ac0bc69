//! With the `tokio` feature: tokio's [`AsyncRead`] and [`AsyncWrite`] for [`Stream`], directly.
//!
//! A [`Stream`] then goes straight into tokio's io utilities, tokio codecs, hyper-util's
//! `TokioIo` and `tower::make::MakeConnection`, with no compat wrapper:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::{SinkExt, StreamExt};
//! use tokio_util::codec::{Framed, LinesCodec};
//!
//! let (a, b) = ysmux::pipe();
//! let (client, driver) = ysmux::Session::client(a, ysmux::Config::default());
//! tokio::spawn(driver);
//! let (server, driver) = ysmux::Session::server(b, ysmux::Config::default());
//! tokio::spawn(driver);
//!
//! let mut lines = Framed::new(client.open().await?, LinesCodec::new());
//! lines.send("hello").await?;
//! let mut peer = Framed::new(server.accept().await?, LinesCodec::new());
//! assert_eq!(peer.next().await.transpose()?.as_deref(), Some("hello"));
//! # Ok(()) }
//! ```
//!
//! Without the feature, wrap a stream with `tokio_util::compat::FuturesAsyncReadCompatExt::compat`
//! (and a tokio transport with `TokioAsyncReadCompatExt::compat` before handing it to
//! [`Session::client`](crate::Session::client)).
//!
//! With the feature, a `Stream` has both kinds of io traits, so `stream.compat()` is ambiguous
//! where both `FuturesAsyncReadCompatExt` and `TokioAsyncReadCompatExt` are in scope: name the
//! trait (`FuturesAsyncReadCompatExt::compat(stream)`), or drop the compat, which is no longer
//! needed.
//!
//! `poll_shutdown` is [`Stream::close_write`]: a half-close on xtaci/smux's wire; on yddeng's,
//! which has no half-close, the stream's `poll_close`, ending it in both directions (see
//! [`Stream`]).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stream::{ReadHalf, Stream, WriteHalf};

/// tokio's io traits on a type that has the futures-io ones: reads fill the `ReadBuf`, and
/// `poll_shutdown` is the half-close where the wire has one, else `poll_close` (a full close).
macro_rules! tokio_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let n = ready!(futures_io::AsyncRead::poll_read(
                    self,
                    cx,
                    buf.initialize_unfilled()
                ))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }
    };
}

macro_rules! tokio_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                futures_io::AsyncWrite::poll_write(self, cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                futures_io::AsyncWrite::poll_flush(self, cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.shutdown_ref(cx)
            }
        }
    };
}

impl Stream {
    fn shutdown_ref(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close_write_ref(cx)
    }
}

impl WriteHalf {
    fn shutdown_ref(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.close_write_ref(cx)
    }
}

tokio_read!(Stream);
tokio_write!(Stream);
tokio_read!(ReadHalf);
tokio_write!(WriteHalf);
