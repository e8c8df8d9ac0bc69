//! The future [`Opener::call`](super::Opener) returns.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::stream::Stream;

/// The response future of [`Opener`](super::Opener): resolves at its first poll, because the
/// reservation made by `poll_ready` is turned into a stream when the future is made.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture {
    result: Option<Result<Stream, Error>>,
}

impl ResponseFuture {
    pub(crate) fn new(result: Result<Stream, Error>) -> Self {
        ResponseFuture {
            result: Some(result),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Stream, Error>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(
            self.result
                .take()
                .expect("ResponseFuture polled after completion"),
        )
    }
}
