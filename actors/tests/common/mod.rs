//! Test servers: a real actix-web server on 127.0.0.1 port 0 on a thread of its own, and (in
//! `raw`) a raw TCP server for faults HTTP servers will not produce; and (in `archive_tools`) the
//! tools that check web archives.

#![allow(dead_code)]

pub mod archive_tools;
pub mod raw;

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};

/// A running server; stopped when dropped.
pub struct TestServer {
    pub base: String,
    handle: ServerHandle,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server whose routes `configure` sets up.
    pub fn start<F>(configure: F) -> TestServer
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = HttpServer::new(move || App::new().configure(configure.clone()))
                    .workers(2)
                    .backlog(4096)
                    .listen(listener)
                    .expect("listen")
                    .run();
                tx.send(server.handle()).expect("send handle");
                server.await.expect("server");
            });
        });
        let handle = rx.recv().expect("server handle");
        TestServer {
            base: format!("http://{addr}"),
            handle,
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let _ = thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(handle.stop(false));
        })
        .join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The 676 codes AA..ZZ.
pub fn every_code() -> Vec<String> {
    let mut v = Vec::with_capacity(676);
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            v.push(String::from_utf8(vec![a, b]).expect("ascii"));
        }
    }
    v
}

/// A distinct body per code, of a few KB.
pub fn body_for(cc: &str) -> Vec<u8> {
    let seed = cc
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    let len = 1000 + (seed % 4000) as usize;
    let mut out = b"GIF89a".to_vec();
    let mut x = seed;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
    out
}

/// Every job read is in exactly one count.
pub fn assert_adds_up(s: &flags_actors::Summary) {
    assert_eq!(
        s.downloaded + s.not_found + s.errors + s.skipped + s.cancelled,
        s.jobs,
        "{s:?}"
    );
}
