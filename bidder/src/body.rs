//! Reading a request body: size limit first, gzip second.
//!
//! The limit is checked against `Content-Length` before a byte is read and
//! again while streaming (chunked bodies carry no length), and once more on
//! the inflated size, so a small gzip bomb cannot grow past it either.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderMap, CONTENT_ENCODING};

#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("unsupported Content-Encoding {0:?}; send identity or gzip")]
    UnsupportedEncoding(String),
    #[error("request body is not valid gzip: {0}")]
    BadGzip(std::io::Error),
    #[error("could not read the request body: {0}")]
    Read(hyper::Error),
}

pub(crate) async fn read(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, BodyError> {
    // The `Content-Length` hyper read and checked (a malformed one never
    // gets here), rather than the header looked up again and parsed.
    // `None` for a chunked body.
    let declared = body.size_hint().exact();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let gzip = match headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None => false,
        Some(e) if e.trim().eq_ignore_ascii_case("identity") || e.trim().is_empty() => false,
        Some(e)
            if e.trim().eq_ignore_ascii_case("gzip") || e.trim().eq_ignore_ascii_case("x-gzip") =>
        {
            true
        }
        Some(e) => return Err(BodyError::UnsupportedEncoding(e.to_string())),
    };

    // Nearly every body arrives in one frame: it is kept as hyper read it,
    // with no copy (a copy was a multi-kilobyte allocation and memcpy per
    // request, which the no-op baseline does not make). A second frame
    // starts a buffer.
    let mut body = body;
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if len + data.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            len += data.len();
            if let Some(buf) = &mut more {
                buf.extend_from_slice(&data);
            } else if let Some(head) = first.take() {
                let mut buf =
                    BytesMut::with_capacity(declared.map_or(len.max(4096), |n| n as usize));
                buf.extend_from_slice(&head);
                buf.extend_from_slice(&data);
                more = Some(buf);
            } else {
                first = Some(data);
            }
        }
    }
    let raw = match (more, first) {
        (Some(buf), _) => buf.freeze(),
        (None, Some(head)) => head,
        (None, None) => Bytes::new(),
    };
    if !gzip {
        return Ok(raw);
    }
    // Room for a typical ratio, never past what can be kept: at most the
    // limit and one byte are inflated.
    let mut out = Vec::with_capacity((raw.len() * 4).min(limit + 1));
    // Every member: a gzip stream is a series of them (RFC 1952 §2.2),
    // which compressors that flush per chunk write.
    flate2::read::MultiGzDecoder::new(&raw[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(BodyError::BadGzip)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(Bytes::from(out))
}
