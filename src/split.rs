//! The owned halves of a split [`Stream`]: one reads, one writes, from two tasks at once.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::stream::Stream;

/// The read half of a [`Stream`], from [`Stream::into_split`]: [`AsyncRead`].
pub struct ReadHalf(pub(crate) Arc<Stream>);

/// The write half of a [`Stream`], from [`Stream::into_split`]: [`AsyncWrite`]. Closing it closes
/// the whole stream (the protocol has no half-close).
pub struct WriteHalf(pub(crate) Arc<Stream>);

/// [`ReadHalf::reunite`] was given halves of two different streams; both are handed back.
#[derive(Debug)]
pub struct ReuniteError(pub ReadHalf, pub WriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the halves belong to different streams")
    }
}

impl std::error::Error for ReuniteError {}

impl ReadHalf {
    /// The stream's id on the wire.
    pub fn id(&self) -> u16 {
        self.0.id()
    }

    /// Puts the two halves of one stream back together.
    pub fn reunite(self, write: WriteHalf) -> Result<Stream, ReuniteError> {
        if !Arc::ptr_eq(&self.0, &write.0) {
            return Err(ReuniteError(self, write));
        }
        drop(write);
        Ok(Arc::into_inner(self.0).expect("both halves were given"))
    }
}

impl WriteHalf {
    /// The stream's id on the wire.
    pub fn id(&self) -> u16 {
        self.0.id()
    }

    /// Closes the writing half only, where the wire has a half-close: see
    /// [`Stream::close_write`].
    pub fn close_write(&self) -> io::Result<()> {
        self.0.close_write()
    }
}

impl fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadHalf").field(&self.0.id()).finish()
    }
}

impl fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WriteHalf").field(&self.0.id()).finish()
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.0.read_ref(cx, buf)
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.write_ref(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.flush_ref(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.close_ref(cx)
    }
}
