//! Recording exchanges for the web archive: what one fetch hands its [`Tape`] (each response's
//! exchange, then its body in pieces, then its end), and the heads rebuilt from what awc parsed
//! where the wire could not see the bytes (https, HTTP/2).
//!
//! The http layer knows no actor and no file: a [`Recorder`] (set on the [`Clients`] of a crawl
//! that keeps an archive) gives each fetch a tape, and the tape decides where things go.
//!
//! [`Clients`]: super::Clients

use std::net::IpAddr;
use std::time::SystemTime;

use awc::http::{header, StatusCode};
use awc::{ClientRequest, ClientResponse};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;

use crate::wire::Recorded;

/// One exchange, once its response head has arrived.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    /// The URL requested.
    pub url: String,
    /// When the request was sent.
    pub date: SystemTime,
    /// The server's address, when known.
    pub ip: Option<IpAddr>,
    /// The request: as written on plain http, rebuilt otherwise.
    pub request: Vec<u8>,
    /// The response's status line and headers: as read on plain http, rebuilt otherwise.
    pub response_head: Vec<u8>,
}

/// Why a body was not recorded to its end (WARC's `WARC-Truncated` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// A size limit: the body limit, or the drain limit of an error body.
    Length,
    /// The attempt's deadline.
    Time,
    /// The connection broke, or ended before the body did.
    Disconnect,
    /// Anything else (the fetch was dropped, or its body was never read).
    Unspecified,
}

impl Cut {
    /// The `WARC-Truncated` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Cut::Length => "length",
            Cut::Time => "time",
            Cut::Disconnect => "disconnect",
            Cut::Unspecified => "unspecified",
        }
    }
}

/// Gives each fetch of a client its tape.
pub(crate) trait Recorder {
    /// A tape for one fetch (redirects followed within it included).
    fn tape(&self) -> Box<dyn Tape>;
}

/// What one fetch records, in order, for each response: [`Tape::head`], the body's pieces, then
/// [`Tape::end`]. A tape dropped with an exchange unfinished records it as cut.
pub(crate) trait Tape {
    /// A response's head arrived. May wait: this is where a slow archive slows the crawl down.
    fn head(&mut self, exchange: Captured) -> LocalBoxFuture<'_, ()>;
    /// The next piece of the body (transfer coding removed, content coding kept).
    fn piece(&mut self, piece: Bytes) -> LocalBoxFuture<'_, ()>;
    /// The body will not be recorded to its end; the first reason given is kept.
    fn cut(&mut self, why: Cut);
    /// The exchange is over: record it. Nothing happens without a head.
    fn end(&mut self);
}

/// The exchange as the wire saw it, the rest rebuilt: over TLS the wire sees only ciphertext,
/// and a head it could not read (too large, not HTTP/1) is rebuilt too.
pub(super) fn captured<S>(
    url: &str,
    date: SystemTime,
    recorded: Recorded,
    rebuilt_request: Vec<u8>,
    resp: &ClientResponse<S>,
) -> Captured {
    Captured {
        url: url.to_string(),
        date,
        ip: recorded.ip,
        request: recorded.request.unwrap_or(rebuilt_request),
        response_head: recorded
            .response_head
            .unwrap_or_else(|| response_head(resp.status(), resp.headers())),
    }
}

/// A request's head rebuilt from what awc will send: `GET /path HTTP/1.1`, `host` (which awc
/// adds itself when sending), then the request's headers (awc keeps no order between names).
pub(super) fn request_head(req: &ClientRequest) -> Vec<u8> {
    let uri = req.get_uri();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = format!("{} {target} HTTP/1.1\r\n", req.get_method()).into_bytes();
    if !req.headers().contains_key(header::HOST) {
        if let Some(host) = uri.host() {
            let default_port = matches!(
                (uri.scheme_str(), uri.port_u16()),
                (_, None) | (Some("http"), Some(80)) | (Some("https"), Some(443))
            );
            out.extend_from_slice(b"host: ");
            out.extend_from_slice(host.as_bytes());
            if let (false, Some(port)) = (default_port, uri.port_u16()) {
                out.extend_from_slice(format!(":{port}").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    push_headers(&mut out, req.headers());
    out.extend_from_slice(b"\r\n");
    out
}

/// A response's head rebuilt from its parsed status and headers, with an `HTTP/1.1` status line
/// whatever the protocol was (WARC readers such as warcio and pywb know only HTTP/1.0 and 1.1).
pub(super) fn response_head(status: StatusCode, headers: &header::HeaderMap) -> Vec<u8> {
    let reason = status.canonical_reason().unwrap_or("");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).into_bytes();
    push_headers(&mut out, headers);
    out.extend_from_slice(b"\r\n");
    out
}

fn push_headers(out: &mut Vec<u8>, headers: &header::HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilt_heads_read_as_http11() {
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/html"),
        );
        assert_eq!(
            response_head(StatusCode::NOT_FOUND, &headers),
            b"HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\n\r\n"
        );
        assert_eq!(Cut::Length.as_str(), "length");
    }
}
