//! The sink protocol of shared/peers/README.md, both sides, over any futures-io stream: the interop
//! tests and the bench (which includes this file) use it with the Go original's `bench-client` and
//! `sink-server`.

use std::io;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The sink's answer once it has every byte.
pub const SINK_OK: u8 = 0x01;

/// The server side on one stream: an 8-byte little-endian length N, exactly N bytes, the answer;
/// then it reads until the client closes the stream.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> io::Result<()> {
    let mut len = [0u8; 8];
    s.read_exact(&mut len).await?;
    let mut left = u64::from_le_bytes(len);
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(left as usize);
        match s.read(&mut buf[..want]).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => left -= n as u64,
        }
    }
    s.write_all(&[SINK_OK]).await?;
    // The client closes the stream once it has the answer.
    while s.read(&mut buf).await? > 0 {}
    Ok(())
}

/// The client side, up to the answer: the length, `len` bytes (`chunk` repeated, in writes of its
/// size), then the 0x01.
pub async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    len: usize,
    chunk: &[u8],
) -> Result<(), String> {
    s.write_all(&(len as u64).to_le_bytes())
        .await
        .map_err(|e| format!("writing the length: {e}"))?;
    let mut off = 0;
    while off < len {
        let n = chunk.len().min(len - off);
        s.write_all(&chunk[..n])
            .await
            .map_err(|e| format!("write at {off} of {len}: {e}"))?;
        off += n;
    }
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer)
        .await
        .map_err(|e| format!("reading the answer after {len} bytes: {e}"))?;
    if answer[0] != SINK_OK {
        return Err(format!("the answer is {:#04x}, not 0x01", answer[0]));
    }
    Ok(())
}
