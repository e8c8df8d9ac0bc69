//! The VRM probe: is the peer on a raw transport a multiplexer at all? (docs/PROTOCOL.md 8)

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};

use crate::core::OFFER;
use crate::frame::{vrm_answer, Cmd, Header, HEADER_LEN};

/// Sends a VRM probe on a raw transport and reads one 7-byte answer: `Ok(true)` if and only if the
/// peer answered as a multiplexer does.
///
/// Any other answer, and end-of-stream before a whole answer, give `Ok(false)`; only a real I/O
/// failure gives an error. The probe holds no timer (this crate has no runtime): bound it with your
/// runtime's timeout, since a peer that says nothing would keep it waiting, for example with smol:
///
/// ```no_run
/// # smol::block_on(async {
/// use std::time::Duration;
/// use smol::future::FutureExt;
/// let mut io = smol::net::TcpStream::connect("127.0.0.1:7000").await?;
/// let is_mux = ysmux::is_smux(&mut io)
///     .or(async {
///         smol::Timer::after(Duration::from_secs(2)).await;
///         Ok(false) // no answer in time: not a multiplexer
///     })
///     .await?;
/// # Ok::<(), std::io::Error>(()) });
/// ```
///
/// Use it before starting a session on the transport; the session then starts on a clean stream.
/// A client session of this crate sends one frame of its own first (its offer of window growth,
/// a VRM): the probe reads past it. (The original's `IsSmux` does not, and takes a client of this
/// crate for something else; probe the server side.)
///
/// # Cancelled probes
/// A probe cancelled (say, by that timeout) after its 7 bytes were written leaves them on the
/// transport, and the peer's answer may still arrive later. A session started on such a transport
/// then receives a VRM that is not the answer to its own: it answers it once, and recognises the
/// peer's answer to that answer (which the original, and this crate, send) without answering it,
/// so nothing loops and nothing else is affected. A peer that is not a multiplexer, though, sees the probe's bytes
/// before the session's first frame: after a cancelled probe, start anew on a fresh connection
/// rather than assume either.
pub async fn is_smux<T>(io: &mut T) -> io::Result<bool>
where
    T: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let (v1, v2) = random_probe();
    io.write_all(&Header::new(Cmd::Vrm, v1, v2).encode())
        .await?;
    io.flush().await?;
    let mut answer = [0u8; HEADER_LEN];
    for _ in 0..2 {
        match io.read_exact(&mut answer).await {
            // A client session of this crate sends its offer of window growth first: it is a
            // multiplexer, and its answer follows.
            Ok(()) if answer == OFFER.encode() => continue,
            Ok(()) => return Ok(answer == vrm_answer(v1, v2).encode()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Random probe values, from the standard library's randomly seeded hasher.
pub(crate) fn random_probe() -> (u16, u32) {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    let r = h.finish();
    (r as u16, (r >> 16) as u32)
}
