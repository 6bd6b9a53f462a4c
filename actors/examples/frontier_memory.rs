//! What a crawl's frontier costs in memory per URL, at 1,000,000 URLs.
//!
//! Shows two numbers, each from the process's resident memory (`VmRSS`, `VmHWM` in
//! `/proc/self/status`, so Linux only):
//! 1. the seen-set alone (`SeenSet`), fed 1,000,000 distinct URLs;
//! 2. a whole crawl whose first page yields 1,000,000 distinct links: the frontier normalises,
//!    scopes, dedupes and queues every one (`--max-pages 1`, so they stay queued: the worst case,
//!    every URL seen *and* waiting), with the engine's actors, HTTP client and writer around it.
//!
//! Run: `cargo run --release -p flags-actors --example frontier_memory [N]`

use std::time::Instant;

use actix_web::{web, App, HttpResponse, HttpServer};
use flags_actors::{Config, CrawlSpec, Crawler, Extract, Extracted, Page, SeenSet, Sink};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The first page "links" to `n` distinct pages of the same host.
struct Many(u64, String);

impl Extract for Many {
    fn wants(&self, _: Option<&str>) -> bool {
        true
    }

    fn extract(&self, _: &Page<'_>) -> Extracted {
        Extracted::links(
            (0..self.0)
                .map(|i| format!("{}p/{i}.html", self.1))
                .collect(),
        )
    }
}

/// Keeps nothing: the measurement is the frontier's, not the disk's.
struct Discard;

impl Sink for Discard {
    fn store(
        &self,
        _: &flags_actors::Job,
        _: &std::path::Path,
        body: &mut dyn std::io::Read,
    ) -> std::io::Result<()> {
        std::io::copy(body, &mut std::io::sink()).map(|_| ())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);

    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let mut seen = SeenSet::default();
    for i in 0..n {
        seen.insert(&format!("http://127.0.0.1:8080/p/{i}.html"));
    }
    let after = status_kib("VmRSS:");
    println!(
        "seen-set: {} URLs in {:.2}s; table {} bytes/URL; resident {} bytes/URL",
        seen.len(),
        started.elapsed().as_secs_f64(),
        seen.bytes() / seen.len().max(1),
        (after - before) * 1024 / n.max(1)
    );
    drop(seen);

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let root = format!("http://{}/", listener.local_addr()?);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(|| {
                App::new().default_service(web::to(|| async { HttpResponse::Ok().body("page") }))
            })
            .workers(1)
            .listen(listener)?
            .run()
            .await
        })
    });
    let base = status_kib("VmRSS:");
    let spec = CrawlSpec::builder()
        .seed(root.as_str())
        .robots(false)
        .max_pages(1)
        .extractor(Many(n, root.clone()))
        .build()?;
    let config = Config::builder().pool_size(16).build()?;
    let started = Instant::now();
    let summary = actix_rt::System::new()
        .block_on(Crawler::new(config, Discard).crawl(spec, std::future::pending()))?;
    let peak = status_kib("VmHWM:");
    println!(
        "frontier: {} URLs discovered, {} queued, in {:.2}s; peak resident {} MiB, {} bytes per \
         discovered URL above the {} MiB before the crawl",
        summary.discovered,
        summary.not_visited,
        started.elapsed().as_secs_f64(),
        peak / 1024,
        (peak.saturating_sub(base)) * 1024 / summary.discovered.max(1),
        base / 1024
    );
    Ok(())
}
