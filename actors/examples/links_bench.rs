//! Times the link step on real pages: every `.html` file under the given directories is read into
//! memory, then [`html_links`] runs over all of them, several times; the best pass is reported
//! as nanoseconds per page and per link (the best, not the mean: on a shared machine the slow
//! passes measure the neighbours).
//!
//! ```sh
//! apt-get install -y python3.11-doc rust-doc
//! cargo run --release -p flags-actors --example links_bench -- /usr/share/doc/python3.11/html
//! cargo run --release -p flags-actors --example links_bench -- --max 3000 /usr/share/doc/rust-doc/html/std
//! ```
//!
//! Pages get the URL `http://docs.test/{path under the directory}`, so relative links resolve as
//! they would on a server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flags_actors::html_links;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut max = usize::MAX;
    let mut dirs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--max" {
            max = args.next().ok_or("--max needs a number")?.parse()?;
        } else {
            dirs.push(PathBuf::from(arg));
        }
    }
    if dirs.is_empty() {
        dirs.push(PathBuf::from("/usr/share/doc/python3.11/html"));
    }
    let mut pages = Vec::new();
    for dir in &dirs {
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        for file in files.into_iter().take(max.saturating_sub(pages.len())) {
            let rel = file.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
            pages.push((format!("http://docs.test/{rel}"), std::fs::read(&file)?));
        }
    }
    let bytes: usize = pages.iter().map(|(_, b)| b.len()).sum();
    println!(
        "{} pages, {:.1} MiB of HTML",
        pages.len(),
        bytes as f64 / (1 << 20) as f64
    );
    if pages.is_empty() {
        return Ok(());
    }
    let links: usize = pages.iter().map(|(u, b)| html_links(u, b).len()).sum();
    let best = best_pass(|| {
        for (url, body) in &pages {
            std::hint::black_box(html_links(url, body));
        }
    });
    report("html_links", best, pages.len(), links);
    Ok(())
}

/// The fastest of at least five passes and at least two seconds of passes.
fn best_pass(mut pass: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 5 || start.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        pass();
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

fn report(what: &str, best: Duration, pages: usize, links: usize) {
    let ns = best.as_nanos() as f64;
    println!(
        "{what}: {links} links ({:.1} per page); {:.0} ns per page, {:.0} ns per link, {:.1} ms per pass",
        links as f64 / pages as f64,
        ns / pages as f64,
        ns / links.max(1) as f64,
        ns / 1e6
    );
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
    Ok(())
}
