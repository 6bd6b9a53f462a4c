//! The **wire**: the connection layer under awc, where `flags` makes HTTP/1 correct against every
//! server, not only well-behaved ones.
//!
//! Owns: each TCP connection awc opens (through [`WireConnector`], awc's custom connector hook),
//! wrapped in a [`Wire`] that knows how many exchanges the connection has carried and whether the
//! server said it will close it.
//! Tells: the fetcher, through the [`Exchange`] of the request it is making (a task-local set
//! around the request, so the connection that awc picks from its pool reports to the request
//! that uses it).
//!
//! Three things awc gets wrong and this layer puts right (RFC 9112):
//! - **Stale keep-alive connections** (§9.3.1). Servers close idle or surplus connections when they
//!   like; a request written on a pooled connection the server already closed fails before any
//!   response byte. The exchange records that its connection was *reused* and that *no response
//!   byte* arrived, so the fetcher can send the request again at once on a fresh connection, as
//!   curl, browsers and hyper do. A failure on a fresh connection stays a failure.
//! - **HTTP/1.0 without keep-alive** (§9.3). awc puts such a connection back in its pool, and the
//!   next request meets a closed socket. The fetcher marks the connection as closing
//!   ([`Exchange::close_connection`]); from then on it reads as closed to anyone but the exchange
//!   still reading its body, so awc's pool check drops it instead of reusing it.
//! - **Close-delimited HTTP/1.1 bodies** (§6.3 rule 8). A response with neither Content-Length nor
//!   Transfer-Encoding ends when the server closes; awc reads it as an empty body and pools the
//!   connection with the body still in it. On plain-http connections the wire reads each response
//!   head and presents such a response to awc as HTTP/1.0, whose bodies awc does read to the end
//!   of the connection (and then closes it). A reset mid-body stays an error. Over TLS the wire sees
//!   only ciphertext, so there the fetcher still refuses such bodies. Unasked-for 1xx interim
//!   responses, which awc would take for the final one, are dropped the same way.
//!
//! And one thing the web archive needs (`--warc`): on plain http, an exchange made with
//! [`Exchange::recording`] keeps the request bytes as written and the final response head as
//! read (before any rewrite, 1xx heads dropped), and every exchange can tell the server's address
//! ([`Exchange::take_recorded`]). Over TLS the wire sees only ciphertext: the caller rebuilds
//! the heads from what awc parsed.
//!
//! And one thing awc cannot know: how many new connections a server can take at once. A server
//! that closes every connection after one response (Python's `http.server`, the book's servers)
//! needs a new TCP connection per request, and such servers often listen with a tiny backlog
//! (Python's is 5). A pool of 100 fetchers opening 100 connections at once overflows it: the
//! kernel drops handshakes, and a connection whose last handshake step was dropped looks open to
//! the client while the server never heard of it, so its request waits for the timeout. So new
//! connections to a host are opened [`OPENING_PER_HOST`] at a time, each counting until its
//! first response byte or for a short hold at most (so a server that is merely slow to answer
//! still gets the whole pool): [`HOLD_UNKNOWN`] until the host's first response, [`HOLD_CLOSING`]
//! once it is seen closing its connections. A host seen keeping them alive is never held back:
//! its connections are reused, and opening them costs it nothing more than one response time.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_rt::net::{ActixStream, Ready, TcpStream};
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use awc::http::Uri;
use bytes::{Buf, BytesMut};
use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// New connections to one host that may await their first response byte at once, unless the
/// host keeps connections alive: Python's `listen(5)` queues 6.
pub const OPENING_PER_HOST: usize = 6;
/// How long a new connection to a host not yet heard from counts as opening, at most.
pub const HOLD_UNKNOWN: Duration = Duration::from_millis(5);
/// How long a new connection to a host that closes its connections counts as opening, at most.
pub const HOLD_CLOSING: Duration = Duration::from_millis(50);

/// The longest request the wire records; a longer one (flags sends GETs of a few hundred bytes)
/// is rebuilt by the caller instead.
pub const MAX_RECORDED_REQUEST: usize = 64 * 1024;

tokio::task_local! {
    static EXCHANGE: Rc<Exchange>;
}

/// What one request learned about the connection that carried it.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    conn: RefCell<Option<Rc<ConnState>>>,
    reused: Cell<bool>,
    response_bytes: Cell<bool>,
    eof: Cell<bool>,
    /// Keep the bytes of each request and response head (for the web archive).
    recording: bool,
    /// The request as written so far; `None` once it outgrew [`MAX_RECORDED_REQUEST`].
    request: RefCell<Option<Vec<u8>>>,
    /// The final response head as read.
    response_head: RefCell<Option<Vec<u8>>>,
}

/// What the wire saw of one exchange, for the web archive.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    /// The request as written, on plain http (`None` over TLS, or when it was too long).
    pub request: Option<Vec<u8>>,
    /// The final response head as read, on plain http (`None` over TLS, or when the wire could
    /// not read it as a head: too large, or not HTTP/1).
    pub response_head: Option<Vec<u8>>,
    /// The address of the server the connection went to.
    pub ip: Option<IpAddr>,
}

impl Exchange {
    /// An exchange that also keeps the bytes of its requests and response heads (plain http).
    pub fn recording() -> Self {
        Exchange {
            recording: true,
            request: RefCell::new(Some(Vec::new())),
            ..Exchange::default()
        }
    }

    /// What the wire saw of the request last begun: its bytes (when recording, on plain http)
    /// and the server's address. Call once its response head has arrived.
    pub fn take_recorded(&self) -> Recorded {
        let conn = self.conn.borrow();
        let plain = conn.as_ref().is_some_and(|c| c.plain);
        let keep = |v: Option<Vec<u8>>| v.filter(|_| plain && self.recording);
        Recorded {
            request: keep(self.request.take()).filter(|r| !r.is_empty()),
            response_head: keep(self.response_head.take()),
            ip: conn.as_ref().and_then(|c| c.peer),
        }
    }

    /// Runs `fut` (requests and the reading of their bodies) with this exchange as the one the
    /// wire reports to.
    pub async fn scope<F: Future>(self: Rc<Self>, fut: F) -> F::Output {
        EXCHANGE.scope(self, fut).await
    }

    /// Forgets the previous request: call before each request sent within the scope.
    pub fn begin(&self) {
        self.conn.replace(None);
        self.reused.set(false);
        self.response_bytes.set(false);
        self.eof.set(false);
        if self.recording {
            self.request.replace(Some(Vec::new()));
            self.response_head.replace(None);
        }
    }

    /// True when the connection reached its end while the response was being read: awc asked
    /// for more and there was none. A chunked body awc then calls complete is not: it ended
    /// before its last chunk. (A complete chunked body never reads the end of the connection.)
    pub fn hit_end(&self) -> bool {
        self.eof.get()
    }

    /// True when the request went out on a connection taken from the pool (it had carried an
    /// earlier exchange) and no byte of a response came back: the server had closed it, and the
    /// request may be sent again on a fresh connection. Over TLS the bytes that arrive are not
    /// seen in the clear (a close_notify alert is bytes too), so there the caller's error kind
    /// decides alone.
    pub fn stale(&self) -> bool {
        let conn = self.conn.borrow();
        match conn.as_ref() {
            Some(c) => self.reused.get() && (!c.plain || !self.response_bytes.get()),
            None => false,
        }
    }

    /// The server said it will close this connection: never hand it to another request, and
    /// open new connections to its host gently from now on.
    pub fn close_connection(&self) {
        if let Some(c) = self.conn.borrow().as_ref() {
            c.closing.set(true);
            c.host.set(HostWays::Closes);
        }
    }

    /// The server keeps this connection alive: its host's new connections need no holding back.
    pub fn kept_alive(&self) {
        if let Some(c) = self.conn.borrow().as_ref() {
            c.host.set(HostWays::KeepsAlive);
        }
    }

    fn is(&self, conn: &Rc<ConnState>) -> bool {
        self.conn
            .borrow()
            .as_ref()
            .is_some_and(|c| Rc::ptr_eq(c, conn))
    }
}

/// One connection's history, shared by its [`Wire`] and the exchange using it.
#[derive(Debug)]
struct ConnState {
    /// Exchanges this connection has started (a TLS handshake starts the first).
    exchanges: Cell<u64>,
    /// The last response said the server closes the connection after it.
    closing: Cell<bool>,
    /// Plain http: the wire sees the HTTP bytes themselves.
    plain: bool,
    /// The server's host.
    host: Rc<Host>,
    /// The server's address (`WARC-IP-Address` in the web archive).
    peer: Option<IpAddr>,
}

/// What the connections of one arbiter know about each host (`name:port`).
#[derive(Debug, Default)]
pub(crate) struct Hosts(RefCell<HashMap<String, Rc<Host>>>);

impl Hosts {
    fn get(&self, key: String) -> Rc<Host> {
        Rc::clone(self.0.borrow_mut().entry(key).or_insert_with(|| {
            Rc::new(Host {
                ways: Cell::new(HostWays::Unknown),
                opening: Arc::new(Semaphore::new(OPENING_PER_HOST)),
            })
        }))
    }
}

/// How a host treats connections, as far as its responses have shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostWays {
    Unknown,
    Closes,
    KeepsAlive,
}

/// One host, and the permits of its new connections awaiting a first response byte.
#[derive(Debug)]
struct Host {
    ways: Cell<HostWays>,
    opening: Arc<Semaphore>,
}

impl Host {
    fn set(&self, ways: HostWays) {
        self.ways.set(ways);
        if ways == HostWays::KeepsAlive {
            // Let every connection waiting for a permit go (`acquire` fails on a closed one).
            self.opening.close();
        }
    }

    /// A permit to open a connection, and how long it is held at most; `None` when not needed.
    async fn opening(&self) -> Option<(OwnedSemaphorePermit, Duration)> {
        let hold = match self.ways.get() {
            HostWays::KeepsAlive => return None,
            HostWays::Unknown => HOLD_UNKNOWN,
            HostWays::Closes => HOLD_CLOSING,
        };
        let permit = Arc::clone(&self.opening).acquire_owned().await.ok()?;
        Some((permit, hold))
    }
}

/// awc's TCP connector, handing out each connection wrapped in a [`Wire`]. The clients of one
/// arbiter share its [`Hosts`].
#[derive(Clone)]
pub(crate) struct WireConnector {
    tcp: ConnectorService,
    hosts: Rc<Hosts>,
}

impl WireConnector {
    pub fn new(hosts: Rc<Hosts>) -> Self {
        WireConnector {
            tcp: ConnectorService::default(),
            hosts,
        }
    }
}

impl Service<ConnectInfo<Uri>> for WireConnector {
    type Response = Connection<Uri, Wire>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let plain = req.request().scheme_str() != Some("https");
        let host = self.hosts.get(format!("{}:{}", req.hostname(), req.port()));
        let tcp = self.tcp.clone();
        Box::pin(async move {
            let permit = host.opening().await;
            let (io, conn) = tcp.call(req).await?.replace_io(());
            let (_, conn) = conn.replace_io(Wire::new(io, plain, host, permit));
            Ok(conn)
        })
    }
}

/// Response heads larger than this are not read by the wire; awc refuses them anyway.
const MAX_HEAD: usize = 64 * 1024;
/// As many header lines as awc accepts.
const MAX_HEADERS: usize = 96;

/// A TCP connection as awc sees it: the same bytes, except that a close-delimited HTTP/1.1
/// response head is presented as HTTP/1.0 (see the module doc).
pub struct Wire {
    io: TcpStream,
    conn: Rc<ConnState>,
    /// Bytes read from the socket and not yet handed to awc.
    out: BytesMut,
    /// The response head being gathered, while an exchange waits for it (plain http only).
    head: Option<BytesMut>,
    /// The exchange's request is a GET (the only kind whose close-delimited body is rewritten).
    get: bool,
    /// Held while this new connection awaits its first response byte (see the module doc).
    opening: Rc<Cell<Option<OwnedSemaphorePermit>>>,
    /// The timer that gives the permit back after the hold; it ends with the connection.
    hold_timer: Option<actix_rt::task::JoinHandle<()>>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        if let Some(timer) = self.hold_timer.take() {
            timer.abort();
        }
    }
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("io", &self.io)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Wire {
    fn new(
        io: TcpStream,
        plain: bool,
        host: Rc<Host>,
        permit: Option<(OwnedSemaphorePermit, Duration)>,
    ) -> Self {
        let opening = Rc::new(Cell::new(None));
        let hold_timer = permit.map(|(permit, hold)| {
            opening.set(Some(permit));
            let held = Rc::clone(&opening);
            actix_rt::spawn(async move {
                actix_rt::time::sleep(hold).await;
                held.take();
            })
        });
        let peer = io.peer_addr().ok().map(|a| a.ip());
        Wire {
            io,
            conn: Rc::new(ConnState {
                exchanges: Cell::new(0),
                closing: Cell::new(false),
                plain,
                host,
                peer,
            }),
            out: BytesMut::new(),
            head: None,
            get: false,
            opening,
            hold_timer,
        }
    }

    /// Whether the exchange now running (if any) is using this connection.
    fn mine(&self) -> bool {
        EXCHANGE.try_with(|ex| ex.is(&self.conn)).unwrap_or(false)
    }

    /// A write by an exchange that has not used this connection yet starts a new exchange on it.
    fn on_write(&mut self, first_bytes: &[u8]) {
        let conn = &self.conn;
        let started = EXCHANGE.try_with(|ex| {
            if ex.is(conn) {
                return false;
            }
            ex.reused.set(conn.exchanges.get() > 0);
            ex.response_bytes.set(false);
            ex.conn.replace(Some(Rc::clone(conn)));
            conn.exchanges.set(conn.exchanges.get() + 1);
            true
        });
        if started == Ok(true) && conn.plain {
            self.out.clear();
            self.head = Some(BytesMut::new());
            self.get = first_bytes.starts_with(b"GET ");
        }
    }

    /// `bytes` went out on this connection: part of the request of the exchange using it, which
    /// keeps them when it records (plain http only: over TLS they are ciphertext).
    fn record_written(&self, bytes: &[u8]) {
        if !self.conn.plain || bytes.is_empty() {
            return;
        }
        let _ = EXCHANGE.try_with(|ex| {
            if !ex.recording || !ex.is(&self.conn) {
                return;
            }
            let mut request = ex.request.borrow_mut();
            let full = request
                .as_ref()
                .is_some_and(|r| r.len() + bytes.len() > MAX_RECORDED_REQUEST);
            if full {
                *request = None;
            } else if let Some(r) = request.as_mut() {
                r.extend_from_slice(bytes);
            }
        });
    }

    /// The final response head of this connection's exchange, as read.
    fn record_head(&self, head: &[u8]) {
        let _ = EXCHANGE.try_with(|ex| {
            if ex.recording && ex.is(&self.conn) {
                ex.response_head.replace(Some(head.to_vec()));
            }
        });
    }

    /// Response bytes came: the server accepted and answers (the opening permit goes back), and
    /// the exchange using this connection (`mine`) got a response.
    fn saw_response_bytes(&self, mine: bool) {
        self.opening.take();
        if mine {
            let _ = EXCHANGE.try_with(|ex| ex.response_bytes.set(true));
        }
    }

    /// Moves what fits of `out` into `buf`.
    fn drain_out(&mut self, buf: &mut ReadBuf<'_>) {
        let n = self.out.len().min(buf.remaining());
        buf.put_slice(&self.out[..n]);
        self.out.advance(n);
    }

    /// Reads until the response head is complete (or cannot be a head), then queues it, possibly
    /// rewritten, with whatever body bytes came along.
    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut head = self.head.take().unwrap_or_default();
        let result = loop {
            match parse_head(&head, self.get) {
                Head::Partial if head.len() < MAX_HEAD => {}
                Head::Interim(n) => {
                    // 1xx: informational, and never asked for (flags sends no `Expect`), so
                    // dropped as RFC 9110 §15.2 lets a client do; awc would take it for the
                    // final response.
                    head.advance(n);
                    continue;
                }
                Head::Final {
                    len,
                    close_delimited,
                } => {
                    self.record_head(&head[..len]);
                    if close_delimited {
                        self.out.extend_from_slice(b"HTTP/1.0");
                        self.out.extend_from_slice(&head[8..len]);
                        head.advance(len);
                    }
                    self.out.extend_from_slice(&head);
                    return Poll::Ready(Ok(()));
                }
                // Too large, or not HTTP/1: hand it over as it is and let awc judge.
                Head::Partial | Head::Invalid => {
                    self.out.extend_from_slice(&head);
                    return Poll::Ready(Ok(()));
                }
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => break Poll::Pending,
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    // Closed before the head was complete: awc sees what came, then the end.
                    let _ = EXCHANGE.try_with(|ex| ex.eof.set(true));
                    self.out.extend_from_slice(&head);
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => {
                    self.saw_response_bytes(true);
                    head.extend_from_slice(rb.filled());
                }
            }
        };
        self.head = Some(head);
        result
    }
}

/// What the bytes gathered so far hold.
enum Head {
    Partial,
    Invalid,
    /// A complete 1xx head of this many bytes.
    Interim(usize),
    /// The complete final head: its length, and whether its body ends only with the connection.
    Final {
        len: usize,
        close_delimited: bool,
    },
}

fn parse_head(bytes: &[u8], get: bool) -> Head {
    if bytes.is_empty() {
        return Head::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let mut config = httparse::ParserConfig::default();
    config.allow_spaces_after_header_name_in_responses(true);
    let len = match config.parse_response(&mut resp, bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Invalid,
    };
    let code = resp.code.unwrap_or(0);
    if (100..200).contains(&code) && code != 101 {
        return Head::Interim(len);
    }
    let framed = resp.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("content-length")
            || h.name.eq_ignore_ascii_case("transfer-encoding")
    });
    let bodiless = code == 204 || code == 304 || code == 101;
    Head::Final {
        len,
        close_delimited: get && resp.version == Some(1) && !framed && !bodiless,
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mine = this.mine();
        if this.conn.closing.get() && !mine {
            // The server closes it after its last response: to awc's pool check it is closed.
            return Poll::Ready(Ok(()));
        }
        if mine && this.head.is_some() && this.out.is_empty() {
            ready!(this.poll_head(cx))?;
        }
        if !this.out.is_empty() {
            this.drain_out(buf);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.saw_response_bytes(mine);
        } else if mine && buf.remaining() > 0 {
            let _ = EXCHANGE.try_with(|ex| ex.eof.set(true));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.on_write(buf);
        let written = ready!(Pin::new(&mut self.io).poll_write(cx, buf))?;
        self.record_written(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        self.on_write(first);
        let written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, bufs))?;
        let mut left = written;
        for b in bufs {
            if left == 0 {
                break;
            }
            let n = left.min(b.len());
            self.record_written(&b[..n]);
            left -= n;
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl ActixStream for Wire {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        if !self.out.is_empty() || self.conn.closing.get() {
            return Poll::Ready(Ok(Ready::READABLE));
        }
        ActixStream::poll_read_ready(&self.io, cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(&self.io, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_head(bytes: &[u8], get: bool) -> Option<(usize, bool)> {
        match parse_head(bytes, get) {
            Head::Final {
                len,
                close_delimited,
            } => Some((len, close_delimited)),
            _ => None,
        }
    }

    #[test]
    fn close_delimited_is_http11_get_without_length_or_chunking() {
        let open = b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\n\r\nGIF89a";
        assert_eq!(final_head(open, true), Some((44, true)));
        assert_eq!(final_head(open, false), Some((44, false)), "not a GET");
        let sized = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nGIF89a";
        assert_eq!(final_head(sized, true).map(|h| h.1), Some(false));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(final_head(chunked, true).map(|h| h.1), Some(false));
        let old = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            final_head(old, true).map(|h| h.1),
            Some(false),
            "awc reads 1.0"
        );
        for bodiless in [
            &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
            b"HTTP/1.1 304 NM\r\n\r\n",
        ] {
            assert_eq!(final_head(bodiless, true).map(|h| h.1), Some(false));
        }
    }

    #[test]
    fn interim_partial_and_invalid_heads() {
        assert!(matches!(
            parse_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", true),
            Head::Interim(25)
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-", true),
            Head::Partial
        ));
        assert!(matches!(parse_head(b"", true), Head::Partial));
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", true),
            Head::Invalid
        ));
    }
}
