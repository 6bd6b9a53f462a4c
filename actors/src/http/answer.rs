//! Reading a response's head: where a redirect points, when to ask again (`Retry-After`), whether
//! the server closes the connection, and which URLs may be requested at all.

use std::time::Duration;

use awc::http::{header, Version};
use awc::ClientResponse;

use super::Failure;
use crate::job::ErrorKind;

/// True for a response after which the server closes the connection: `Connection: close`, or
/// HTTP/1.0 without `Connection: keep-alive` (which awc would wrongly keep).
pub(super) fn closes_after<S>(resp: &ClientResponse<S>) -> bool {
    let has = |token| has_token(resp, header::CONNECTION, token);
    has("close") || (resp.version() == Version::HTTP_10 && !has("keep-alive"))
}

/// True when the comma-separated header `name` lists `token` (case-insensitive).
pub(super) fn has_token<S>(
    resp: &ClientResponse<S>,
    name: header::HeaderName,
    token: &str,
) -> bool {
    resp.headers()
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Only absolute http(s) URLs with a host are fetched; anything else is refused before any
/// connection is made.
pub(crate) fn check_url(raw: &str) -> Result<(), String> {
    match url::Url::parse(raw) {
        Ok(u) if is_http(&u) => Ok(()),
        Ok(u) => Err(format!("not an http(s) URL: {}", u.scheme())),
        Err(e) => Err(format!("not a valid URL: {e}")),
    }
}

/// An absolute http or https URL with a host: the only kind ever requested.
fn is_http(u: &url::Url) -> bool {
    (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some()
}

/// Where a redirect response points, resolved against the URL that answered it. `None` for any
/// other response; an error for a Location that is not an http(s) URL.
pub(super) fn redirect_target<S>(
    resp: &ClientResponse<S>,
    current: &str,
    allow_insecure: bool,
) -> Result<Option<String>, Failure> {
    let status = resp.status();
    let redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
    let Some(location) = resp.headers().get(header::LOCATION).filter(|_| redirect) else {
        return Ok(None);
    };
    let bad = |why: String| Failure {
        status: Some(status.as_u16()),
        ..Failure::permanent(ErrorKind::Redirect, why)
    };
    let location = location
        .to_str()
        .map_err(|_| bad("redirect Location is not valid text".into()))?;
    let base = url::Url::parse(current).map_err(|e| bad(format!("bad URL {current}: {e}")))?;
    let next = base
        .join(location)
        .map_err(|e| bad(format!("bad redirect Location {location:?}: {e}")))?;
    if !is_http(&next) {
        return Err(bad(format!(
            "redirect to a non-http(s) URL refused: {next}"
        )));
    }
    if base.scheme() == "https" && next.scheme() == "http" && !allow_insecure {
        return Err(bad(format!(
            "redirect from https to plain http refused: {next} (allow it with \
             --allow-insecure-redirects)"
        )));
    }
    Ok(Some(next.to_string()))
}

/// An HTTP/1.1 response whose body ends only when the connection closes. awc reads such a body
/// as empty; the wire presents it to awc as HTTP/1.0 on plain http, so only an https response
/// still looks like this, and it is refused rather than stored empty.
pub(super) fn close_delimited<S>(resp: &ClientResponse<S>) -> bool {
    resp.version() == Version::HTTP_11
        && !resp.headers().contains_key(header::CONTENT_LENGTH)
        && !resp.headers().contains_key(header::TRANSFER_ENCODING)
}

/// `Retry-After` as seconds or an HTTP date.
pub(super) fn retry_after<S>(resp: &ClientResponse<S>) -> Option<Duration> {
    let value = resp
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}
