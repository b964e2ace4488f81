//! hyper answers some requests itself, before any handler exists: bytes that
//! are not HTTP (400), a URL over its limit (414), headers larger than its
//! buffer (431), a version it does not speak (505). It writes a bare head
//! with `content-length: 0` and closes. [`Enveloped`] wraps a connection's
//! IO, spots such a head as hyper writes it (a status line of 400 or more,
//! `content-length: 0`, nothing after the head: every error the router
//! answers has a body) and writes the same status with the protocol's error
//! envelope instead, so a client gets the envelope for every error.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::http::StatusCode;
use domain::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// A connection's IO whose bare error heads are written with the envelope.
pub struct Enveloped<T> {
    inner: T,
    /// A replacement being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> Enveloped<T> {
    pub fn new(inner: T) -> Enveloped<T> {
        Enveloped { inner, pending: None }
    }
}

impl<T: AsyncWrite + Unpin> Enveloped<T> {
    /// Writes what is left of a replacement.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, at)) = &mut self.pending {
            if *at == bytes.len() {
                self.pending = None;
                break;
            }
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*at..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *at += written;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Enveloped<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Enveloped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(replacement) = rewrite(buf) {
            self.pending = Some((replacement, 0));
            // Taken: what is not out yet goes with the next write, flush or shutdown.
            if let Poll::Ready(Err(error)) = self.drain(cx) {
                return Poll::Ready(Err(error));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            return self.poll_write(cx, only);
        }
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The envelope answer for a bare error head hyper wrote itself, or `None`.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"HTTP/1.1 ").or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
    if status.as_u16() < 400 || !head.ends_with(b"\r\n\r\n") || head.len() > 1024 {
        return None;
    }
    let bare = head.windows(21).any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length: 0\r\n"));
    if !bare {
        return None;
    }
    let (code, message) = match status.as_u16() {
        400 => (ErrorCode::InvalidFormat, "the request is not valid HTTP".to_string()),
        414 => (ErrorCode::ValidationError, "the URL is longer than the server accepts".to_string()),
        431 => (ErrorCode::ValidationError, "the request's headers are larger than the server accepts".to_string()),
        505 => (ErrorCode::ValidationError, "this HTTP version is not supported: use HTTP/1.1 or HTTP/2".to_string()),
        500.. => (ErrorCode::InternalError, status.canonical_reason().unwrap_or("server error").to_string()),
        _ => (ErrorCode::ValidationError, status.canonical_reason().unwrap_or("bad request").to_string()),
    };
    let body = ApiError::new(code, message).with_status(status).envelope().to_string();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nx-content-type-options: nosniff\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body.as_bytes());
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn only_bare_error_heads_are_rewritten() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sat, 05 Dec 2026 12:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(rewrite(bare).expect("rewritten")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
        let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["httpStatus"], 400);
        assert_eq!(answer.split("\r\n\r\n").nth(1).unwrap().len().to_string(), answer.split("content-length: ").nth(1).unwrap().split("\r\n").next().unwrap());
        // Answers with a body, successes, and bodies that follow their head are left alone.
        assert!(rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}").is_none());
        assert!(rewrite(b"{\"HTTP/1.1 400\"}").is_none());
        assert!(rewrite(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n").is_some());
    }
}
