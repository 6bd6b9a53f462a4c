//! The HTTP of one job: the awc clients of an arbiter, a GET under one deadline from connect to
//! the last body byte, redirects, body limits, and retries.
//!
//! Transient failures (connect errors, timeouts, resets, truncated bodies, 408, 429, 5xx and
//! configured statuses) are retried with exponential backoff and jitter, honouring `Retry-After`
//! up to a cap; in a crawl, a 429 or 503 pauses the whole host in the frontier instead. A request
//! that fails on a pooled connection the server had already closed is not a failure at all: it is
//! sent again at once on a fresh connection (see [`crate::wire`]), whatever the retry setting.
//! Error bodies are read (up to a small bound) so keep-alive connections are reused.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_http::error::ParseError;
use awc::error::{ConnectError, PayloadError, SendRequestError};
use awc::http::{header, StatusCode, Version};
use awc::{Client, ClientRequest, ClientResponse, Connector};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rand::Rng;

use crate::config::Config;
use crate::extract::Extract;
use crate::frontier::PauseHost;
use crate::job::{ErrorKind, Job, JobError};
use crate::wire::{Exchange, Hosts, WireConnector};
use crate::writer::{Append, Body, PartState, Writer};

/// How one job reads its responses.
#[derive(Clone, Copy)]
pub(crate) struct Want<'a> {
    /// Follow redirects within the job (a crawl hands them to the frontier instead).
    pub follow: bool,
    /// Bodies this step wants are read whole into memory, with their headers.
    pub extract: Option<&'a dyn Extract>,
    /// Where to ask for a pause on 429/503.
    pub frontier: Option<&'a Recipient<PauseHost>>,
    /// Where large bodies go while they are read (none: held in memory).
    pub stream_to: StreamTo<'a>,
}

impl Want<'_> {
    pub const PLAIN: Want<'static> = Want {
        follow: true,
        extract: None,
        frontier: None,
        stream_to: None,
    };
}

/// Error bodies up to this size are read so the connection can be reused; larger ones are dropped
/// with their connection.
const DRAIN_LIMIT: usize = 64 * 1024;

/// The HTTP clients of one arbiter.
#[derive(Clone)]
pub(crate) struct Clients {
    /// Keeps connections alive and reuses them.
    pooled: Client,
    /// Never keeps a connection: a request sent through it always goes out on a fresh one.
    fresh: Client,
}

/// What a request returns: awc's response, its body not yet read. Named through awc's future
/// because its body type changes with awc's compression features, which an embedding program's
/// dependencies may turn on.
type Response = <<awc::SendClientRequest as std::future::Future>::Output as Sent>::Response;

trait Sent {
    type Response;
}

impl<T, E> Sent for Result<T, E> {
    type Response = T;
}

/// Builds the HTTP clients for one arbiter, with every limit taken from the config.
pub(crate) fn build_clients(config: &Config) -> Clients {
    let hosts = Rc::new(Hosts::default());
    Clients {
        pooled: build_client(config, &hosts),
        fresh: build_client(config, &hosts),
    }
}

fn build_client(config: &Config, hosts: &Rc<Hosts>) -> Client {
    // rustls needs a process-wide crypto provider; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in &config.root_certs {
        // Certificates were parsed when the config was built; a root rustls rejects is skipped.
        let _ = roots.add(rustls::pki_types::CertificateDer::from(der.clone()));
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    // awc's default of 100 connections per connector would silently cap a larger pool. Every
    // connection goes through the wire, which tells each request what its connection did.
    let connector = Connector::new()
        .connector(WireConnector::new(Rc::clone(hosts)))
        .limit(config.pool_size)
        .timeout(config.connect_timeout)
        .rustls_0_23(Arc::new(tls));
    // Redirects are followed by `fetch_inner`, which can refuse non-http(s) targets; awc's own
    // redirect handling would connect to whatever host an `ftp://` Location names.
    Client::builder()
        .connector(connector)
        .timeout(config.timeout)
        .disable_redirects()
        .add_default_header((header::USER_AGENT, config.user_agent.as_str()))
        .finish()
}

/// A GET whose body is passed on exactly as the server sent it: never decoded, even when an
/// embedding program's feature flags turn awc's decompression on (the body is checked against
/// Content-Length, which counts the bytes on the wire).
fn get(client: &Client, config: &Config, url: &str) -> ClientRequest {
    let mut request = client
        .get(url)
        .no_decompress()
        .insert_header((header::ACCEPT_ENCODING, "identity"));
    for (name, value) in &config.headers {
        request = request.insert_header((name.clone(), value.clone()));
    }
    request
}

/// Sends one request. One that meets a pooled connection the server had already closed is sent
/// again at once on a fresh connection (RFC 9112 §9.3.1): that is not an attempt, and happens at
/// most once.
async fn send(
    clients: &Clients,
    config: &Config,
    ex: &Exchange,
    url: &str,
) -> Result<Response, Failure> {
    ex.begin();
    match get(&clients.pooled, config, url).send().await {
        Err(e) if ex.stale() && broken_connection(&e) => {
            ex.begin();
            get(&clients.fresh, config, url)
                .force_close()
                .send()
                .await
                .map_err(send_failure)
        }
        result => result.map_err(send_failure),
    }
}

/// The errors of a connection that was closed or reset under a request, before its response.
fn broken_connection(e: &SendRequestError) -> bool {
    matches!(
        e,
        SendRequestError::Connect(ConnectError::Disconnected | ConnectError::Io(_))
            | SendRequestError::Send(_)
            | SendRequestError::Response(ParseError::Io(_) | ParseError::Incomplete)
    )
}

/// How one attempt failed.
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    pub status: Option<u16>,
    pub transient: bool,
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn transient(kind: ErrorKind, message: String) -> Self {
        Failure {
            kind,
            message,
            status: None,
            transient: true,
            retry_after: None,
        }
    }

    pub fn permanent(kind: ErrorKind, message: String) -> Self {
        Failure {
            transient: false,
            ..Failure::transient(kind, message)
        }
    }

    pub fn error(&self) -> JobError {
        JobError::new(self.kind, self.message.clone())
    }
}

/// What one attempt got.
pub(crate) enum Got {
    Body(Body),
    /// A body the extractor wants, whole, with the response headers (names in lower case).
    Page(Bytes, Vec<(String, String)>),
    NotFound,
    /// In a crawl: a redirect (with its status) to this URL, not followed.
    Redirect(String, u16),
}

/// GETs `url`, retrying transient failures; `attempt` counts the attempts made. In a crawl, a
/// 429 or 503 pauses the whole host in the frontier, and the retry waits for that pause.
pub(crate) async fn fetch_retrying(
    client: &Clients,
    config: &Config,
    url: &str,
    limit: u64,
    want: Want<'_>,
    attempt: &mut u32,
) -> Result<Got, Failure> {
    loop {
        *attempt += 1;
        match fetch(client, config, url, limit, want).await {
            Err(f) if f.transient && *attempt <= config.retries => {
                let wait = match (want.frontier, f.status) {
                    (Some(frontier), Some(429 | 503)) => {
                        let pause = PauseHost {
                            url: url.to_string(),
                            retry_after: f.retry_after,
                        };
                        match frontier.send(pause).await {
                            Ok(wait) => wait,
                            Err(_) => backoff(config, *attempt, f.retry_after),
                        }
                    }
                    _ => backoff(config, *attempt, f.retry_after),
                };
                actix_rt::time::sleep(wait).await;
            }
            Err(f) if want.frontier.is_some() && matches!(f.status, Some(429 | 503)) => {
                // No tries left: the host still gets its pause.
                if let Some(frontier) = want.frontier {
                    frontier.do_send(PauseHost {
                        url: url.to_string(),
                        retry_after: f.retry_after,
                    });
                }
                return Err(f);
            }
            result => return result,
        }
    }
}

/// What a small request got (robots.txt).
pub(crate) enum Small {
    Body(Bytes),
    NotFound,
    Failed {
        status: Option<u16>,
        #[allow(dead_code)] // kept for the reports of a later version
        message: String,
    },
}

/// GETs a small text body, following redirects, without retries.
pub(crate) async fn fetch_small(
    clients: &Clients,
    config: &Config,
    url: &str,
    limit: u64,
) -> Small {
    match fetch(clients, config, url, limit, Want::PLAIN).await {
        Ok(Got::Body(Body::Memory(bytes))) => Small::Body(bytes),
        Ok(Got::NotFound) => Small::NotFound,
        Ok(_) => Small::Failed {
            status: Some(200),
            message: "unexpected body".into(),
        },
        Err(f) => Small::Failed {
            status: f.status,
            message: f.message,
        },
    }
}

/// The delay before retry number `attempt` (1-based): exponential with "equal jitter", raised to
/// the server's `Retry-After` when it asks for longer (capped).
fn backoff(config: &Config, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = config
        .backoff
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(config.backoff_max);
    let jittered = exp.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
    match retry_after {
        Some(ra) => jittered.max(ra.min(config.retry_after_max)),
        None => jittered,
    }
}

/// One GET (following redirects) under the attempt deadline, accepting at most `limit` body bytes.
async fn fetch(
    client: &Clients,
    config: &Config,
    url: &str,
    limit: u64,
    want: Want<'_>,
) -> Result<Got, Failure> {
    // The last status received, so a body that times out still reports its 200.
    let status = Cell::new(None);
    let ex = Rc::new(Exchange::default());
    let attempt = fetch_inner(client, config, &ex, url, limit, want, &status);
    match actix_rt::time::timeout(config.timeout, Rc::clone(&ex).scope(attempt)).await {
        Ok(result) => result,
        Err(_) => Err(Failure {
            status: status.get(),
            ..Failure::transient(
                ErrorKind::Timeout,
                format!(
                    "timed out after {:?} (connect to last byte)",
                    config.timeout
                ),
            )
        }),
    }
}

async fn fetch_inner(
    client: &Clients,
    config: &Config,
    ex: &Exchange,
    url: &str,
    limit: u64,
    want: Want<'_>,
    last_status: &Cell<Option<u16>>,
) -> Result<Got, Failure> {
    let mut current = url.to_string();
    let mut hops = 0;
    let (mut resp, status) = loop {
        let mut resp = send(client, config, ex, &current).await?;
        let status = resp.status();
        last_status.set(Some(status.as_u16()));
        if closes_after(&resp) {
            ex.close_connection();
        } else if resp.version() != Version::HTTP_10 {
            ex.kept_alive();
        }
        let Some(next) = redirect_target(&resp, &current, config.allow_insecure_redirects)? else {
            break (resp, status);
        };
        if !want.follow {
            let _ = read_body(&mut resp, DRAIN_LIMIT as u64, None).await;
            return Ok(Got::Redirect(next, status.as_u16()));
        }
        if hops == config.max_redirects {
            return Err(Failure {
                status: Some(status.as_u16()),
                ..Failure::permanent(
                    ErrorKind::Redirect,
                    format!(
                        "HTTP error {} - too many redirects (limit {})",
                        status.as_u16(),
                        config.max_redirects
                    ),
                )
            });
        }
        hops += 1;
        let _ = read_body(&mut resp, DRAIN_LIMIT as u64, None).await;
        current = next;
    };
    if status == StatusCode::OK {
        let with_status = |f: Failure| Failure {
            status: Some(200),
            ..f
        };
        if close_delimited(&resp) {
            return Err(with_status(Failure::permanent(
                ErrorKind::Protocol,
                "response body has neither Content-Length nor chunked encoding (over https, \
                 bodies that end with the connection are not supported)"
                    .into(),
            )));
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let wanted = want.extract.is_some_and(|e| e.wants(content_type));
        let headers = wanted.then(|| {
            resp.headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect::<Vec<_>>()
        });
        // A page for the extractor is read whole (within the body limit).
        let stream_to = if wanted { None } else { want.stream_to };
        let body = read_body(&mut resp, limit, stream_to)
            .await
            .map_err(with_status)?;
        if has_token(&resp, header::TRANSFER_ENCODING, "chunked") && ex.hit_end() {
            // awc ends a chunked body quietly when the connection closes before the last chunk.
            return Err(with_status(Failure::transient(
                ErrorKind::Truncated,
                "reading body: truncated: the connection closed before the last chunk".into(),
            )));
        }
        return Ok(match (body, headers) {
            (Body::Memory(bytes), Some(headers)) => Got::Page(bytes, headers),
            (body, _) => Got::Body(body),
        });
    }
    // Read small error bodies so the keep-alive connection goes back to the pool.
    let _ = read_body(&mut resp, DRAIN_LIMIT as u64, None).await;
    if status == StatusCode::NOT_FOUND {
        return Ok(Got::NotFound);
    }
    let code = status.as_u16();
    let message = format!(
        "HTTP error {} - {}",
        code,
        status.canonical_reason().unwrap_or("Unknown Status")
    );
    Err(Failure {
        kind: ErrorKind::Status,
        message,
        status: Some(code),
        transient: config.is_retryable_status(code),
        retry_after: retry_after(&resp),
    })
}

/// True for a response after which the server closes the connection: `Connection: close`, or
/// HTTP/1.0 without `Connection: keep-alive` (which awc would wrongly keep).
fn closes_after<S>(resp: &ClientResponse<S>) -> bool {
    let has = |token| has_token(resp, header::CONNECTION, token);
    has("close") || (resp.version() == Version::HTTP_10 && !has("keep-alive"))
}

/// True when the comma-separated header `name` lists `token` (case-insensitive).
fn has_token<S>(resp: &ClientResponse<S>, name: header::HeaderName, token: &str) -> bool {
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
fn redirect_target<S>(
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
fn close_delimited<S>(resp: &ClientResponse<S>) -> bool {
    resp.version() == Version::HTTP_11
        && !resp.headers().contains_key(header::CONTENT_LENGTH)
        && !resp.headers().contains_key(header::TRANSFER_ENCODING)
}

fn send_failure(e: SendRequestError) -> Failure {
    // A certificate (or any TLS) error does not go away by asking again.
    if let SendRequestError::Connect(ConnectError::Io(io)) = &e {
        if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            return Failure::permanent(ErrorKind::Tls, format!("TLS error: {tls}"));
        }
    }
    match e {
        SendRequestError::Url(_) => Failure::permanent(ErrorKind::InvalidUrl, e.to_string()),
        SendRequestError::Http(_) | SendRequestError::TunnelNotSupported => {
            Failure::permanent(ErrorKind::Protocol, e.to_string())
        }
        SendRequestError::Timeout => Failure::transient(ErrorKind::Timeout, e.to_string()),
        SendRequestError::Response(_) => Failure::transient(
            if broken_connection(&e) {
                ErrorKind::Connect
            } else {
                ErrorKind::Protocol
            },
            e.to_string(),
        ),
        _ => Failure::transient(ErrorKind::Connect, e.to_string()),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after<S>(resp: &ClientResponse<S>) -> Option<Duration> {
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

/// Bodies up to this size are held in memory and stored in one go; larger ones go to the writer
/// in pieces of this size as they arrive, so memory stays bounded by the pool size.
const STREAM_THRESHOLD: usize = 1 << 20;

/// The bytes read and not yet handed on. The common small body arrives as one chunk and is kept
/// without copying.
#[derive(Default)]
struct Held {
    first: Option<Bytes>,
    buf: BytesMut,
}

impl Held {
    fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.buf.len()
    }

    fn push(&mut self, chunk: Bytes, capacity: usize) {
        match self.first.take() {
            None if self.buf.is_empty() => self.first = Some(chunk),
            prev => {
                if let Some(prev) = prev {
                    self.buf.reserve(capacity.max(prev.len() + chunk.len()));
                    self.buf.extend_from_slice(&prev);
                }
                self.buf.extend_from_slice(&chunk);
            }
        }
    }

    fn take(&mut self) -> Bytes {
        match self.first.take() {
            Some(b) => b,
            None => self.buf.split().freeze(),
        }
    }
}

/// Where large bodies go while they are read.
pub(crate) type StreamTo<'a> = Option<(&'a Addr<Writer>, &'a Job)>;

/// Reads the whole body, refusing more than `limit` bytes whether announced or streamed. With a
/// writer, bodies over [`STREAM_THRESHOLD`] are written in pieces as they arrive.
async fn read_body<S>(
    resp: &mut ClientResponse<S>,
    limit: u64,
    stream_to: StreamTo<'_>,
) -> Result<Body, Failure>
where
    S: futures_util::Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let announced = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = announced {
        if len > limit {
            return Err(too_large(len, limit));
        }
    }
    let capacity = announced.map_or(0, |n| n.min(STREAM_THRESHOLD as u64) as usize);
    let mut held = Held::default();
    let mut part: Option<PartState> = None;
    let mut total: u64 = 0;
    while let Some(chunk) = resp.next().await {
        let chunk = chunk
            .map_err(|e| Failure::transient(ErrorKind::Truncated, format!("reading body: {e}")))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(too_large(total, limit));
        }
        held.push(chunk, capacity);
        if let Some((writer, job)) = stream_to {
            if held.len() >= STREAM_THRESHOLD {
                part = Some(append(writer, job, part, held.take()).await?);
            }
        }
    }
    // awc ends the body quietly when the connection closes early: check the length ourselves,
    // or a truncated body would be stored as complete.
    if let Some(len) = announced {
        if total != len {
            return Err(Failure::transient(
                ErrorKind::Truncated,
                format!("reading body: truncated: received {total} of {len} bytes"),
            ));
        }
    }
    match (part, stream_to) {
        (None, _) => Ok(Body::Memory(held.take())),
        (Some(p), Some((writer, job))) if held.len() > 0 => Ok(Body::Parts(
            append(writer, job, Some(p), held.take()).await?,
        )),
        (Some(p), _) => Ok(Body::Parts(p)),
    }
}

async fn append(
    writer: &Addr<Writer>,
    job: &Job,
    part: Option<PartState>,
    piece: Bytes,
) -> Result<PartState, Failure> {
    let msg = Append {
        job: job.clone(),
        part,
        piece,
    };
    match writer.send(msg).await {
        Ok(Ok(part)) => Ok(part),
        Ok(Err(e)) => Err(Failure::permanent(e.kind, e.message)),
        Err(e) => Err(Failure::permanent(
            ErrorKind::Internal,
            format!("writer unavailable: {e}"),
        )),
    }
}

fn too_large(len: u64, limit: u64) -> Failure {
    Failure::permanent(
        ErrorKind::TooLarge,
        format!("body of {len} bytes or more exceeds the limit of {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let config = Config::builder()
            .backoff(Duration::from_millis(100))
            .backoff_max(Duration::from_secs(1))
            .build()
            .unwrap();
        let first = backoff(&config, 1, None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let tenth = backoff(&config, 10, None);
        assert!(tenth <= Duration::from_secs(1) && tenth >= Duration::from_millis(500));
        let ra = backoff(&config, 1, Some(Duration::from_secs(3)));
        assert_eq!(ra, Duration::from_secs(3));
        let capped = backoff(&config, 1, Some(Duration::from_secs(3600)));
        assert_eq!(capped, config.retry_after_max);
    }
}
