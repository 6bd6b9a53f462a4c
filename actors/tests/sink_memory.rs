//! A custom `Sink` that does not stream (no `begin`) still receives a large body in pieces:
//! memory stays at a small buffer, not at the body's size (issue: the engine inside a long-lived
//! program). Its own test binary, so the process's peak RSS is this test's alone.

mod common;

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::raw::{head, RawServer};
use flags_actors::{Config, Crawler, Job, Sink};

const BODY: usize = 64 * 1024 * 1024;

/// The byte at `i` of the body the server sends.
fn byte_at(i: usize) -> u8 {
    (i % 251) as u8
}

/// Reads each body in 64 KiB pieces and keeps only its length and a checksum.
#[derive(Default)]
struct Checksum {
    len: AtomicU64,
    sum: AtomicU64,
}

impl Sink for Checksum {
    fn store(&self, _job: &Job, _file: &Path, body: &mut dyn Read) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let (mut len, mut sum) = (0u64, 0u64);
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                sum = sum.wrapping_add((len + i as u64) ^ u64::from(*b));
            }
            len += n as u64;
        }
        self.len.store(len, Ordering::SeqCst);
        self.sum.store(sum, Ordering::SeqCst);
        Ok(())
    }
}

/// This process's peak resident memory. (Not `getrusage`: its peak survives `exec`, so it starts
/// at the size of the cargo process that forked the test.)
fn peak_rss_mib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib / 1024
}

#[test]
fn a_sink_without_begin_gets_a_64_mib_body_in_small_memory() {
    let server = RawServer::start(|_, stream| {
        head(stream, "200 OK", &[("Content-Length", &BODY.to_string())]);
        let mut piece = vec![0u8; 64 * 1024];
        for start in (0..BODY).step_by(piece.len()) {
            for (i, b) in piece.iter_mut().enumerate() {
                *b = byte_at(start + i);
            }
            if stream.write_all(&piece).is_err() {
                return;
            }
        }
    });
    let sink = Arc::new(Checksum::default());
    let job = Job::new("big", format!("{}/big", server.base), "big.bin");
    let config = Config::builder().pool_size(1).build().unwrap();
    let (_events, handle) = Crawler::with_sink(config, sink.clone()).spawn(vec![job]);
    let summary = handle.join().unwrap();
    assert_eq!(summary.downloaded, 1, "{summary:?}");

    let expected = (0..BODY).fold(0u64, |sum, i| {
        sum.wrapping_add(i as u64 ^ u64::from(byte_at(i)))
    });
    assert_eq!(sink.len.load(Ordering::SeqCst), BODY as u64);
    assert_eq!(sink.sum.load(Ordering::SeqCst), expected, "body intact");
    let peak = peak_rss_mib();
    println!("peak RSS {peak} MiB for a {} MiB body", BODY >> 20);
    // Whole, the body alone would need 64 MiB.
    assert!(peak < 32, "peak RSS {peak} MiB");
}
