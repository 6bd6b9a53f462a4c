//! Embedding `flags-actors` in a program with no async runtime of its own.
//!
//! Shows: the blocking API (`Crawler::spawn`) with the program's own lazy job source (lines of a
//! sitemap, not country codes), its own output drawn from the `Event`s on the crossbeam receiver,
//! and the final `Summary`. It starts the built-in flag server on 127.0.0.1 itself, so it runs
//! offline.
//!
//! Run: `cargo run --release --example embed`
//!
//! Prints one line per job, then the summary:
//! ```text
//! [ 1/12] ok         br/metadata.json (63 bytes, 3 ms)
//! ...
//! [12/12] not found  missing/page.html
//! done: 8 downloaded, 4 not found, 0 errors in 0.01s
//! ```

use flags_actors::{Config, Crawler, DirSink, Event, Job, Outcome};

/// The program's own list of things to fetch: paths relative to the site.
const SITEMAP: &str = "
br/br.gif
br/metadata.json
fr/fr.gif
fr/metadata.json
jp/jp.gif
jp/metadata.json
ng/ng.gif
ng/metadata.json
zz/zz.gif
missing/page.html
robots.txt
br/nothing.gif
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = flags::server::spawn_builtin()?;
    let base = server.base().to_string();
    let dest = std::env::temp_dir().join("flags-embed-example");

    // Read lazily: the engine pulls one line at a time as fetchers become free.
    let jobs = SITEMAP
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(move |path| {
            let file = path.replace('/', "_");
            Job::new(path, format!("{base}/{path}"), file)
        });
    let total = SITEMAP.lines().filter(|l| !l.trim().is_empty()).count();

    let config = Config::builder().pool_size(4).build()?;
    let (events, handle) = Crawler::new(config, DirSink::new(&dest)?).spawn(jobs);
    let mut seen = 0;
    for event in events {
        let Event::Job(report) = event else { continue };
        seen += 1;
        let (word, detail) = match &report.outcome {
            Outcome::Downloaded(_) => (
                "ok",
                format!(
                    " ({} bytes, {} ms)",
                    report.bytes,
                    report.elapsed.as_millis()
                ),
            ),
            Outcome::NotFound => ("not found", String::new()),
            Outcome::Skipped => ("skipped", String::new()),
            Outcome::Error(e) => ("error", format!(" ({}: {e})", e.kind.as_str())),
            // Outcomes later versions may add.
            other => (other.kind(), String::new()),
        };
        println!("[{seen:2}/{total}] {word:<10} {}{detail}", report.job.key);
    }
    let summary = handle.join()?;
    println!(
        "done: {} downloaded, {} not found, {} errors in {:.2}s",
        summary.downloaded,
        summary.not_found,
        summary.errors,
        summary.elapsed.as_secs_f64()
    );
    println!("saved in {}", dest.display());
    Ok(())
}
