//! The HTTP of one request: the awc clients of an arbiter, a GET under one deadline from connect
//! to the last body byte, redirects, body limits, and (for a plain list of jobs) retries.
//!
//! It knows no actor: it reports what happened (a body, a 404, a redirect, a failure with its
//! status and `Retry-After`) and the caller decides what that means; in a crawl, the frontier's
//! policy. A request that fails on a pooled connection the server had already closed is not a
//! failure at all: it is sent again at once on a fresh connection (see [`crate::wire`]),
//! whatever the retry setting. Error bodies are read (up to a small bound) so keep-alive
//! connections are reused. Bodies too large to hold in memory leave in pieces through a
//! [`Spill`].
//!
//! Clients made [`Clients::recording`] hand every exchange of every fetch to a [`Tape`] (see
//! `record`): the request and response head as they went over the wire on plain http (rebuilt
//! from what awc parsed over https and HTTP/2), then the body as it is read, error bodies and
//! bodies cut short included.

mod answer;
mod body;
mod record;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_http::error::ParseError;
use awc::error::{ConnectError, SendRequestError};
use awc::http::{header, StatusCode, Version};
use awc::{Client, ClientRequest, Connector};
use bytes::Bytes;
use rand::Rng;

pub(crate) use answer::check_url;
pub(crate) use body::{AtLimit, Read, Spill};
pub(crate) use record::{Captured, Cut, Recorder, Tape};

use crate::config::Config;
use crate::extract::Extract;
use crate::job::{ErrorKind, JobError};
use crate::wire::{Exchange, Hosts, WireConnector};
use answer::{close_delimited, closes_after, has_token, redirect_target, retry_after};
use body::read_body;

/// How one request reads its responses.
#[derive(Clone, Copy)]
pub(crate) struct Want<'a> {
    /// Follow redirects within the request (a crawl reports them instead: the frontier decides).
    pub follow: bool,
    /// Redirects followed in a row before it is an error.
    pub max_redirects: u8,
    /// Bodies this step wants are read whole into memory, with their headers.
    pub extract: Option<&'a dyn Extract>,
}

impl Want<'_> {
    /// Redirects followed up to the config's limit, nothing extracted.
    pub fn plain(config: &Config) -> Want<'static> {
        Want {
            follow: true,
            max_redirects: config.max_redirects,
            extract: None,
        }
    }
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
    /// Where every exchange is recorded (a crawl that keeps a web archive).
    recorder: Option<Rc<dyn Recorder>>,
}

impl Clients {
    /// The same clients, recording every exchange of every fetch with `recorder`.
    pub fn recording(mut self, recorder: Rc<dyn Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }
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
        recorder: None,
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
///
/// With `rebuilt`, the request's head as awc will send it is written there (for the archive,
/// where the wire cannot see it).
async fn send(
    clients: &Clients,
    config: &Config,
    ex: &Exchange,
    url: &str,
    mut rebuilt: Option<&mut Vec<u8>>,
) -> Result<Response, Failure> {
    ex.begin();
    let request = get(&clients.pooled, config, url);
    if let Some(r) = rebuilt.as_deref_mut() {
        *r = record::request_head(&request);
    }
    match request.send().await {
        Err(e) if ex.stale() && broken_connection(&e) => {
            ex.begin();
            let request = get(&clients.fresh, config, url).force_close();
            if let Some(r) = rebuilt {
                *r = record::request_head(&request);
            }
            request.send().await.map_err(send_failure)
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
    /// A 200's body, and its `Content-Type`.
    Body(Read, Option<String>),
    /// A body the extractor wants, whole, with the response headers (names in lower case).
    Page(Bytes, Vec<(String, String)>),
    NotFound,
    /// A redirect (with its status) to this URL, not followed.
    Redirect(String, u16),
}

/// GETs `url` for a plain list of jobs, retrying transient failures with exponential backoff and
/// jitter (honouring `Retry-After` up to a cap); `attempt` counts the attempts made.
pub(crate) async fn fetch_retrying(
    client: &Clients,
    config: &Config,
    url: &str,
    limit: u64,
    want: Want<'_>,
    mut spill: Option<&mut (dyn Spill + 'static)>,
    attempt: &mut u32,
) -> Result<Got, Failure> {
    loop {
        *attempt += 1;
        if let Some(s) = spill.as_deref_mut() {
            s.reset();
        }
        match fetch(client, config, url, limit, want, spill.as_deref_mut()).await {
            Err(f) if f.transient && *attempt <= config.retries => {
                actix_rt::time::sleep(backoff(config, *attempt, f.retry_after)).await;
            }
            result => return result,
        }
    }
}

/// What a small request (robots.txt) got: no retries, redirects followed up to a limit, the body
/// cut at a limit rather than refused.
pub(crate) struct Small {
    /// The last status received; `None` when no response came.
    pub status: Option<u16>,
    /// A 2xx body, cut to the limit (empty otherwise).
    pub body: Bytes,
    /// The redirects could not be followed (too many, or to a non-http URL).
    pub redirect_failed: bool,
    pub retry_after: Option<Duration>,
    /// What went wrong, when anything did.
    pub message: String,
}

/// GETs a small text body (robots.txt) under `deadline`.
pub(crate) async fn fetch_small(
    clients: &Clients,
    config: &Config,
    url: &str,
    limit: u64,
    max_redirects: u8,
    deadline: Duration,
) -> Small {
    let want = Want {
        follow: true,
        max_redirects,
        extract: None,
    };
    let small = |status, body, message: String| Small {
        status,
        body,
        redirect_failed: false,
        retry_after: None,
        message,
    };
    let attempt = fetch_with(clients, config, url, limit, AtLimit::Cut, want, None);
    // Dropped at the deadline: its tape records an exchange under way as cut.
    match actix_rt::time::timeout(deadline, attempt).await {
        Err(_) => small(None, Bytes::new(), format!("timed out after {deadline:?}")),
        Ok(Ok(Got::Body(Read::Memory(body), _))) => small(Some(200), body, String::new()),
        Ok(Ok(Got::NotFound)) => small(Some(404), Bytes::new(), String::new()),
        Ok(Ok(_)) => small(Some(200), Bytes::new(), "unexpected answer".into()),
        Ok(Err(f)) => Small {
            status: f.status.filter(|_| f.kind != ErrorKind::Redirect),
            body: Bytes::new(),
            redirect_failed: f.kind == ErrorKind::Redirect,
            retry_after: f.retry_after,
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

/// One GET (redirects as `want` says) under the attempt deadline, accepting at most `limit` body
/// bytes.
pub(crate) async fn fetch(
    client: &Clients,
    config: &Config,
    url: &str,
    limit: u64,
    want: Want<'_>,
    spill: Option<&mut (dyn Spill + 'static)>,
) -> Result<Got, Failure> {
    fetch_with(client, config, url, limit, AtLimit::Refuse, want, spill).await
}

async fn fetch_with(
    client: &Clients,
    config: &Config,
    url: &str,
    limit: u64,
    at_limit: AtLimit,
    want: Want<'_>,
    spill: Option<&mut (dyn Spill + 'static)>,
) -> Result<Got, Failure> {
    // The last status received, so a body that times out still reports its 200.
    let status = Cell::new(None);
    let mut tape = client.recorder.as_ref().map(|r| r.tape());
    let ex = Rc::new(if tape.is_some() {
        Exchange::recording()
    } else {
        Exchange::default()
    });
    let attempt = fetch_inner(
        client,
        config,
        &ex,
        url,
        limit,
        at_limit,
        want,
        spill,
        &status,
        tape.as_deref_mut(),
    );
    // Bound first, so the attempt (and its borrow of the tape) is gone before the tape is used.
    let outcome = actix_rt::time::timeout(config.timeout, Rc::clone(&ex).scope(attempt)).await;
    let result = match outcome {
        Ok(result) => result,
        Err(_) => {
            if let Some(tape) = tape.as_deref_mut() {
                tape.cut(Cut::Time);
            }
            Err(Failure {
                status: status.get(),
                ..Failure::transient(
                    ErrorKind::Timeout,
                    format!(
                        "timed out after {:?} (connect to last byte)",
                        config.timeout
                    ),
                )
            })
        }
    };
    if let Some(tape) = tape.as_deref_mut() {
        // Every exchange whose body was read to its end has ended already: one still open
        // stopped short (a deadline, or a failure before its body was read).
        tape.cut(Cut::Unspecified);
        tape.end();
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn fetch_inner(
    client: &Clients,
    config: &Config,
    ex: &Exchange,
    url: &str,
    limit: u64,
    at_limit: AtLimit,
    want: Want<'_>,
    spill: Option<&mut (dyn Spill + 'static)>,
    last_status: &Cell<Option<u16>>,
    mut tape: Option<&mut (dyn Tape + 'static)>,
) -> Result<Got, Failure> {
    let mut current = url.to_string();
    let mut hops = 0;
    let drain = DRAIN_LIMIT as u64;
    let mut rebuilt = Vec::new();
    let (mut resp, status) = loop {
        let date = SystemTime::now();
        let rebuild = tape.is_some().then_some(&mut rebuilt);
        let mut resp = send(client, config, ex, &current, rebuild).await?;
        let status = resp.status();
        last_status.set(Some(status.as_u16()));
        if let Some(tape) = tape.as_deref_mut() {
            let exchange = record::captured(
                &current,
                date,
                ex.take_recorded(),
                std::mem::take(&mut rebuilt),
                &resp,
            );
            tape.head(exchange).await;
        }
        if closes_after(&resp) {
            ex.close_connection();
        } else if resp.version() != Version::HTTP_10 {
            ex.kept_alive();
        }
        let Some(next) = redirect_target(&resp, &current, config.allow_insecure_redirects)? else {
            break (resp, status);
        };
        let _ = read_body(&mut resp, drain, AtLimit::Cut, None, tape.as_deref_mut()).await;
        if let Some(tape) = tape.as_deref_mut() {
            tape.end();
        }
        if !want.follow {
            return Ok(Got::Redirect(next, status.as_u16()));
        }
        if hops == want.max_redirects {
            return Err(Failure {
                status: Some(status.as_u16()),
                ..Failure::permanent(
                    ErrorKind::Redirect,
                    format!(
                        "HTTP error {} - too many redirects (limit {})",
                        status.as_u16(),
                        want.max_redirects
                    ),
                )
            });
        }
        hops += 1;
        current = next;
    };
    if status.is_success() && (status == StatusCode::OK || at_limit == AtLimit::Cut) {
        let with_status = |f: Failure| Failure {
            status: Some(status.as_u16()),
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
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let wanted = want
            .extract
            .is_some_and(|e| e.wants(content_type.as_deref()));
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
        let spill = if wanted { None } else { spill };
        let body = read_body(&mut resp, limit, at_limit, spill, tape.as_deref_mut())
            .await
            .map_err(with_status)?;
        if has_token(&resp, header::TRANSFER_ENCODING, "chunked") && ex.hit_end() {
            // awc ends a chunked body quietly when the connection closes before the last chunk.
            if let Some(tape) = tape.as_deref_mut() {
                tape.cut(Cut::Disconnect);
            }
            return Err(with_status(Failure::transient(
                ErrorKind::Truncated,
                "reading body: truncated: the connection closed before the last chunk".into(),
            )));
        }
        if let Some(tape) = tape {
            tape.end();
        }
        return Ok(match (body, headers) {
            (Read::Memory(bytes), Some(headers)) => Got::Page(bytes, headers),
            (body, _) => Got::Body(body, content_type),
        });
    }
    // Read small error bodies so the keep-alive connection goes back to the pool.
    let _ = read_body(&mut resp, drain, AtLimit::Cut, None, tape.as_deref_mut()).await;
    if let Some(tape) = tape {
        tape.end();
    }
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
