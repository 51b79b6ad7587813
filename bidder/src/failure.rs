//! One mapping from what went wrong to what the client is told, for both
//! ports: the status, a short plain-text reason, and the headers that go
//! with it. Handlers say what failed; this says how that reads on the wire.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use crate::app::ExplainError;
use crate::body::BodyError;
use crate::notice::NoticeError;

pub(crate) type Resp = Response<Full<Bytes>>;

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A plain-text answer that says when to come back (`Retry-After`, in
/// seconds).
pub(crate) fn text_retry_after(status: StatusCode, body: &'static str, secs: &'static str) -> Resp {
    let mut r = text(status, body);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static(secs));
    r
}

/// Something a request got wrong, or could not get done.
pub(crate) trait Failure: std::fmt::Display {
    fn status(&self) -> StatusCode;

    /// Headers the status calls for.
    fn headers(&self, _r: &mut Resp) {}

    /// The answer: the status, the reason as text, the headers.
    fn response(&self) -> Resp {
        let mut r = text(self.status(), format!("{self}\n"));
        self.headers(&mut r);
        r
    }
}

/// The admin port's own refusals.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("not found")]
    NotFound,
    #[error(
        "the admin API is off: start the bidder with --admin-token-file or BIDDER_ADMIN_TOKEN"
    )]
    AdminOff,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("the body took too long")]
    SlowBody,
    #[error("the body is not UTF-8 text")]
    NotUtf8,
    #[error("use {0}")]
    Method(&'static str),
}

impl Failure for Refused {
    fn status(&self) -> StatusCode {
        match self {
            Refused::NotFound => StatusCode::NOT_FOUND,
            Refused::AdminOff => StatusCode::FORBIDDEN,
            Refused::Unauthorized => StatusCode::UNAUTHORIZED,
            Refused::SlowBody => StatusCode::REQUEST_TIMEOUT,
            Refused::NotUtf8 => StatusCode::BAD_REQUEST,
            Refused::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn headers(&self, r: &mut Resp) {
        match self {
            Refused::Unauthorized => {
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The rest of the body may still be on its way: the connection
            // goes with the answer.
            Refused::SlowBody => {
                r.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Refused::Method(allow) => {
                r.headers_mut()
                    .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
    }
}

impl Failure for BodyError {
    fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::BadGzip(_) | BodyError::GzipMembers(_) | BodyError::Read(_) => {
                StatusCode::BAD_REQUEST
            }
            BodyError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn headers(&self, r: &mut Resp) {
        // The rest of an oversized body is still on the wire; don't read it.
        if let BodyError::TooLarge(_) | BodyError::Busy = self {
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

impl Failure for NoticeError {
    fn status(&self) -> StatusCode {
        match self {
            NoticeError::Signature => StatusCode::FORBIDDEN,
            NoticeError::Expired => StatusCode::GONE,
            NoticeError::Storage | NoticeError::Busy | NoticeError::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn headers(&self, r: &mut Resp) {
        // Retry soon: the charge was not made, and the retry makes it.
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
    }
}

impl Failure for ExplainError {
    fn status(&self) -> StatusCode {
        match self {
            ExplainError::Invalid(_) => StatusCode::BAD_REQUEST,
            ExplainError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ExplainError::UnknownExchange(_) => StatusCode::NOT_FOUND,
        }
    }
}

impl Failure for crate::track::TrackError {
    fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

/// A bid request that is not one (400 with the reason).
pub(crate) struct BadRequest(pub(crate) String);

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Failure for BadRequest {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}
