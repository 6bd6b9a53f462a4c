//! Embedding a crawl with its own link/item step.
//!
//! Shows: `Crawler::crawl` with a `CrawlSpec` (seed, depth limit, per-host limit) and a custom
//! `Extract` step that makes one record per page (its `<title>`, as a JSON line) and follows only
//! the links it chooses (none with a query string). Records reach the program in each page's
//! `JobReport::records`, on the event stream; pages are stored by the `DirSink` as usual. It
//! serves the built-in test site on 127.0.0.1 itself, so it runs offline.
//!
//! Run: `cargo run --release --example crawl_items`
//!
//! Prints one record per page, then the summary:
//! ```text
//! {"url":"http://127.0.0.1:PORT/","depth":0,"title":"Page 0","links":9}
//! ...
//! done: 219 pages stored, 1 not found, 1 redirected; 223 URLs discovered
//! ```

use std::cell::RefCell;

use flags::server::{spawn, ServerOptions};
use flags::site::Site;
use flags_actors::{
    html_links, Config, CrawlSpec, Crawler, DirSink, Event, Extract, Extracted, Page,
};
use lol_html::{text, HtmlRewriter, Settings};

/// The program's own step: a record per page, and the links without a query string.
struct Titles;

impl Extract for Titles {
    fn extract(&self, page: &Page<'_>) -> Extracted {
        let title = RefCell::new(String::new());
        {
            let mut rewriter = HtmlRewriter::new(
                Settings::new().append_element_content_handler(text!("title", |t| {
                    title.borrow_mut().push_str(t.as_str());
                    Ok(())
                })),
                |_: &[u8]| {},
            );
            if rewriter.write(page.body).is_ok() {
                let _ = rewriter.end();
            }
        }
        let links: Vec<String> = html_links(page.url, page.body)
            .into_iter()
            .filter(|l| !l.contains('?'))
            .collect();
        let record = serde_json::json!({
            "url": page.url,
            "depth": page.depth,
            "title": title.into_inner().trim(),
            "links": links.len(),
        });
        Extracted::new(links, vec![record.to_string()])
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = spawn(ServerOptions {
        site: Some(Site::new(100)),
        ..ServerOptions::default()
    })?;
    let root = format!("{}/", server.base().trim_end_matches("/flags"));
    let spec = CrawlSpec::builder()
        .seed(root)
        .max_depth(2)
        .per_host(4)
        .extractor(Titles)
        .build()?;
    let config = Config::builder().pool_size(8).build()?;
    let dest = tempfile::tempdir()?;
    let crawler = Crawler::new(config, DirSink::new(dest.path())?).on_event(|event| {
        if let Event::Job(report) = event {
            for record in &report.records {
                println!("{record}");
            }
        }
    });
    let system = actix_rt::System::new();
    let summary = system.block_on(crawler.crawl(spec, std::future::pending()))?;
    println!(
        "done: {} pages stored, {} not found, {} redirected; {} URLs discovered",
        summary.downloaded, summary.not_found, summary.redirected, summary.discovered
    );
    Ok(())
}
