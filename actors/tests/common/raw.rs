//! A raw TCP "HTTP server" for what real HTTP servers won't do: reset connections, lie about
//! Content-Length, stall mid-body. One thread per connection; every response closes it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A running raw server; stops accepting when dropped.
pub struct RawServer {
    pub base: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl RawServer {
    /// Calls `handle(path, stream)` for every request; the connection closes when it returns.
    pub fn start<F>(handle: F) -> RawServer
    where
        F: Fn(&str, &mut TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let stopping = Arc::clone(&stop);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = conn else { continue };
                let handle = Arc::clone(&handle);
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    if let Some(path) = read_request_path(&mut stream) {
                        handle(&path, &mut stream);
                    }
                });
            }
        });
        RawServer {
            base: format!("http://{addr}"),
            stop,
            addr,
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads the request head (bounded) and returns the path of its request line.
fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    text.lines()
        .next()?
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

/// Writes a complete response and closes.
pub fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// Writes only a head (the caller decides what body follows, if any).
pub fn head(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)]) {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

/// Closes with a TCP reset instead of a clean close.
pub fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// How a [`ConnServer`] treats its connections: each a way real servers end keep-alive.
#[derive(Clone, Copy, Debug)]
pub enum Style {
    /// HTTP/1.1 keep-alive, every connection kept as long as the client likes (nginx).
    KeepAlive,
    /// HTTP/1.0 responses without `Connection: keep-alive`, closed soon after each response
    /// (Python's `http.server`, and so the book's servers).
    Http10,
    /// HTTP/1.1 keep-alive that closes each connection after 1 to 5 requests without saying so:
    /// either right after a response, or on reading the next request, which gets no answer.
    CloseAfterFew,
    /// HTTP/1.1 keep-alive that closes a connection idle for 50 ms between requests.
    IdleClose,
    /// HTTP/1.1 responses with neither Content-Length nor chunked encoding: the body ends when the
    /// server closes the connection.
    CloseDelimited,
}

/// What a [`ConnServer`] saw.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Requests read (answered or not).
    pub requests: AtomicUsize,
    /// Requests read and then left without an answer (the connection closed under them).
    pub unanswered: AtomicUsize,
}

impl ConnStats {
    pub fn get(&self) -> (usize, usize, usize) {
        (
            self.connections.load(Ordering::SeqCst),
            self.requests.load(Ordering::SeqCst),
            self.unanswered.load(Ordering::SeqCst),
        )
    }
}

/// A raw HTTP/1 server that keeps (or drops) connections the way [`Style`] says. `body(path)` is
/// the 200 body of a path, `None` a 404.
pub struct ConnServer {
    pub base: String,
    pub stats: Arc<ConnStats>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

type BodyFn = dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync;

impl ConnServer {
    pub fn start<F>(style: Style, body: F) -> ConnServer
    where
        F: Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ConnStats::default());
        let body: Arc<BodyFn> = Arc::new(body);
        let (stopping, counted) = (Arc::clone(&stop), Arc::clone(&stats));
        thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                counted.connections.fetch_add(1, Ordering::SeqCst);
                let (body, stats) = (Arc::clone(&body), Arc::clone(&counted));
                thread::spawn(move || serve_conn(style, n as u64, stream, &*body, &stats));
            }
        });
        ConnServer {
            base: format!("http://{addr}"),
            stats,
            stop,
            addr,
        }
    }
}

impl Drop for ConnServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A small deterministic generator, so every run of a test sees the same faults.
fn lcg(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move |n| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    }
}

fn serve_conn(style: Style, n: u64, mut stream: TcpStream, body: &BodyFn, stats: &ConnStats) {
    let mut roll = lcg(n);
    let keep_for = 1 + roll(5);
    let mut served = 0;
    loop {
        // Like nginx's keepalive_timeout: the short idle limit applies between requests; a new
        // connection gets the long one (client_header_timeout) for its first.
        let idle = match style {
            Style::IdleClose if served > 0 => Duration::from_millis(50),
            _ => Duration::from_secs(10),
        };
        let _ = stream.set_read_timeout(Some(idle));
        let Some(path) = read_request_path(&mut stream) else {
            return; // closed by the client, or idle too long
        };
        stats.requests.fetch_add(1, Ordering::SeqCst);
        if matches!(style, Style::CloseAfterFew) && served == keep_for {
            stats.unanswered.fetch_add(1, Ordering::SeqCst);
            return;
        }
        served += 1;
        let (status, bytes) = match body(&path) {
            Some(b) => ("200 OK", b),
            None => ("404 Not Found", b"404: no such flag".to_vec()),
        };
        let version = if matches!(style, Style::Http10) {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        let mut out =
            format!("{version} {status}\r\nServer: raw-test\r\nContent-Type: image/gif\r\n");
        if !matches!(style, Style::CloseDelimited) {
            out.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(&bytes);
        // Large bodies go out in pieces, as a real server streams them.
        for piece in out.chunks(64 * 1024) {
            if stream.write_all(piece).is_err() {
                return;
            }
        }
        match style {
            Style::KeepAlive | Style::IdleClose => {}
            Style::Http10 => {
                // Python closes a moment after the response, so a fast client's pool still sees
                // the connection open. A request that came in meanwhile was sent on a connection
                // the server had said it would close: counted, never answered.
                thread::sleep(Duration::from_micros(roll(2000)));
                let _ = stream.set_nonblocking(true);
                if stream.read(&mut [0u8; 1]).is_ok_and(|n| n > 0) {
                    stats.requests.fetch_add(1, Ordering::SeqCst);
                    stats.unanswered.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
            Style::CloseAfterFew if served == keep_for && roll(2) == 0 => return,
            Style::CloseAfterFew => {}
            Style::CloseDelimited => {
                let _ = stream.shutdown(std::net::Shutdown::Write);
                return;
            }
        }
    }
}
