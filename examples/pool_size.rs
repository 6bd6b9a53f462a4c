//! What the pool size buys: the same crawl of a slow server at pool sizes 1, 10 and 100.
//!
//! Shows: `Config::pool_size` is the concurrency. Against a server that delays every response
//! (here 100 ms, like the book's DELAY server at 500 ms), the wall time is about
//! ceil(jobs / pool) × delay. Starts the delaying flag server itself.
//!
//! Run: `cargo run --release --example pool_size`
//!
//! Prints one line per pool size:
//! ```text
//! pool   1: 4.15s for 40 jobs (26 ok, 14 not found)
//! pool  10: 0.43s for 40 jobs (26 ok, 14 not found)
//! pool 100: 0.12s for 40 jobs (26 ok, 14 not found)
//! ```

use std::time::Duration;

use flags::server::{self, ServerOptions};
use flags_actors::{Config, Crawler, DirSink, Job};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let delay = Duration::from_millis(100);
    let server = server::spawn(ServerOptions {
        delay: Some((delay, delay)),
        ..ServerOptions::default()
    })?;
    let base = server.base().to_string();
    let codes: Vec<String> = flags::countries::every_code()
        .into_iter()
        .skip(26)
        .take(40)
        .collect();

    for pool in [1, 10, 100] {
        let dest = tempfile::tempdir()?;
        let jobs: Vec<Job> = codes
            .iter()
            .map(|cc| {
                let lc = cc.to_lowercase();
                Job::new(
                    cc.as_str(),
                    format!("{base}/{lc}/{lc}.gif"),
                    format!("{cc}.gif"),
                )
            })
            .collect();
        let config = Config::builder().pool_size(pool).build()?;
        let (_events, handle) = Crawler::new(config, DirSink::new(dest.path())?).spawn(jobs);
        let s = handle.join()?;
        println!(
            "pool {pool:3}: {:.2}s for {} jobs ({} ok, {} not found)",
            s.elapsed.as_secs_f64(),
            s.jobs,
            s.downloaded,
            s.not_found
        );
    }
    Ok(())
}
