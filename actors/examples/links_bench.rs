//! Times the link step on real pages: every `.html` file under the given directories is read into
//! memory, then the link step runs over all of them, several times; the best pass is reported as
//! nanoseconds per page and per link (the best, not the mean: on a shared machine the slow passes
//! measure the neighbours). Time is the thread's CPU time (`/proc/thread-self/schedstat`, wall
//! time where that file is missing), which other processes disturb far less than wall time.
//!
//! ```sh
//! apt-get install -y python3.11-doc rust-doc
//! cargo run --release -p flags-actors --example links_bench -- /usr/share/doc/python3.11/html
//! cargo run --release -p flags-actors --example links_bench -- /usr/share/doc/rust-doc/html/std
//! ```
//!
//! Pages get the URL `http://docs.test/{path under the directory}`, so relative links resolve as
//! they would on a server. The steps timed, passes interleaved so that they share the machine's
//! moods:
//! - `before`: `html_links` as it was before it read pages as a browser does (kept below, as it
//!   was, for the comparison);
//! - `html_links`: today's, on the body alone (encoding from the `<meta charset>`);
//! - `HtmlLinks`: the crawl's step on a [`Page`] with a `Content-Type: text/html; charset=utf-8`
//!   header, as the writer runs it;
//! - `+requisites`: the same with page requisites (`HtmlLinks.requisites(true)`);
//! - `lol_html, no handler` and `lol_html, a handler matching nothing`: lol_html's floors, what
//!   any link step built on it pays before it finds a link: its tag scanner alone, then with the
//!   selector machinery any element handler switches on (on rustdoc pages that machinery, which
//!   keeps a stack of open elements, costs more than the scanning).

use std::path::{Path, PathBuf};
use std::time::Instant;

use flags_actors::{html_links, Extract, HtmlLinks, Page};

/// How many passes of each step, at least.
const PASSES: usize = 7;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dirs = Vec::new();
    let mut max = usize::MAX;
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
    let headers = [(
        "content-type".to_string(),
        "text/html; charset=utf-8".to_string(),
    )];
    let with_requisites = HtmlLinks.requisites(true);
    let steps: [(&str, &Step); 6] = [
        ("before", &|url, body| before::html_links(url, body).len()),
        ("html_links", &|url, body| html_links(url, body).len()),
        ("HtmlLinks", &|url, body| {
            HtmlLinks
                .extract(&Page::new(url, &headers, body))
                .links
                .len()
        }),
        ("+requisites", &|url, body| {
            let found = with_requisites.extract(&Page::new(url, &headers, body));
            found.links.len() + found.assets.len()
        }),
        ("lol_html, no handler", &|_, body| floor::scan(body, false)),
        ("lol_html, a handler matching nothing", &|_, body| {
            floor::scan(body, true)
        }),
    ];
    let mut best = [u64::MAX; 6];
    let mut found = [0; 6];
    for _ in 0..PASSES {
        for (i, (_, step)) in steps.iter().enumerate() {
            let start = Clock::now();
            found[i] = pages.iter().map(|(url, body)| step(url, body)).sum();
            best[i] = best[i].min(start.elapsed_ns());
        }
    }
    for (i, (name, _)) in steps.iter().enumerate() {
        let ns = best[i] as f64;
        let per_url = match found[i] {
            0 => "".to_string(),
            n => format!(", {:>5.0} ns per URL", ns / n as f64),
        };
        println!(
            "{name:>36}: {:>7} URLs ({:5.1} per page); {:>8.0} ns per page{per_url}",
            found[i],
            found[i] as f64 / pages.len() as f64,
            ns / pages.len() as f64,
        );
    }
    println!("({})", Clock::now().kind());
    Ok(())
}

/// A link step: a page's URL and body in, how many URLs it found out.
type Step<'a> = dyn Fn(&str, &[u8]) -> usize + 'a;

/// The thread's CPU time, else wall time.
enum Clock {
    Cpu(u64),
    Wall(Instant),
}

impl Clock {
    fn now() -> Self {
        match cpu_ns() {
            Some(ns) => Clock::Cpu(ns),
            None => Clock::Wall(Instant::now()),
        }
    }

    fn elapsed_ns(&self) -> u64 {
        match self {
            Clock::Cpu(start) => cpu_ns().unwrap_or(*start).saturating_sub(*start),
            Clock::Wall(start) => start.elapsed().as_nanos() as u64,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Clock::Cpu(_) => "thread CPU time",
            Clock::Wall(_) => "wall time",
        }
    }
}

/// Nanoseconds this thread has run on a CPU (Linux's schedstat: the first field).
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
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

/// The link step before this rework (commit b3aa43f), verbatim but for this comment.
mod before {
    use std::cell::RefCell;

    use lol_html::{element, HtmlRewriter, Settings};

    pub fn html_links(url: &str, body: &[u8]) -> Vec<String> {
        let Ok(page) = url::Url::parse(url) else {
            return Vec::new();
        };
        let hrefs = RefCell::new(Vec::new());
        let base = RefCell::new(None::<String>);
        {
            let settings = Settings::new()
                .append_element_content_handler(element!("a[href], area[href]", |el| {
                    if let Some(href) = el.get_attribute("href") {
                        hrefs.borrow_mut().push(href);
                    }
                    Ok(())
                }))
                .append_element_content_handler(element!("base[href]", |el| {
                    let mut base = base.borrow_mut();
                    if base.is_none() {
                        *base = el.get_attribute("href");
                    }
                    Ok(())
                }));
            let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
            if rewriter.write(body).is_ok() {
                let _ = rewriter.end();
            }
        }
        let base = base
            .into_inner()
            .and_then(|b| page.join(b.trim()).ok())
            .unwrap_or(page);
        hrefs
            .into_inner()
            .iter()
            .filter_map(|h| base.join(h.trim()).ok())
            .map(String::from)
            .collect()
    }
}

/// lol_html's floors: the same pass with nothing (or nothing that matches) to find.
mod floor {
    use lol_html::{element, HtmlRewriter, Settings};

    pub fn scan(body: &[u8], with_handler: bool) -> usize {
        let mut settings = Settings::new();
        if with_handler {
            settings = settings.append_element_content_handler(element!("flags-none", |_| Ok(())));
        }
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        if rewriter.write(body).is_ok() {
            let _ = rewriter.end();
        }
        0
    }
}
