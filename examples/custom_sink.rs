//! A custom `Sink`: keep every body in memory and print its SHA-256 instead of writing files.
//!
//! Shows: implementing `flags_actors::Sink` (called on the writer's blocking threads; a job counts
//! as downloaded only when `store` returns `Ok`), sharing the sink with the caller through an
//! `Arc`, and reading it back after the crawl. Starts the built-in flag server itself.
//!
//! Run: `cargo run --release --example custom_sink`
//!
//! Prints one line per stored flag, sorted, then a count:
//! ```text
//! BR.gif  2481 bytes  sha256 5f1c…
//! ...
//! 5 bodies kept in memory (3 not found)
//! ```

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flags_actors::{Config, Crawler, Job, Sink};
use sha2::{Digest, Sha256};

/// Bodies by file name.
#[derive(Default)]
struct MemorySink {
    bodies: Mutex<BTreeMap<PathBuf, Vec<u8>>>,
}

impl Sink for MemorySink {
    fn store(&self, _job: &Job, file: &Path, body: &mut dyn io::Read) -> io::Result<()> {
        // Bodies arrive as readers (a large one from a spool file): this sink keeps them whole
        // because keeping them is its point.
        let mut kept = Vec::new();
        body.read_to_end(&mut kept)?;
        let mut bodies = self
            .bodies
            .lock()
            .map_err(|_| io::Error::other("sink lock poisoned"))?;
        bodies.insert(file.to_path_buf(), kept);
        Ok(())
    }

    fn exists(&self, file: &Path) -> bool {
        self.bodies
            .lock()
            .map(|b| b.contains_key(file))
            .unwrap_or(false)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = flags::server::spawn_builtin()?;
    let base = server.base().to_string();
    let sink = Arc::new(MemorySink::default());

    let codes = ["BR", "FR", "JP", "NG", "US", "XX", "YY", "ZZ"];
    let jobs = codes.map(|cc| {
        let lc = cc.to_lowercase();
        Job::new(cc, format!("{base}/{lc}/{lc}.gif"), format!("{cc}.gif"))
    });
    let config = Config::builder().pool_size(8).build()?;
    let (_events, handle) = Crawler::with_sink(config, sink.clone()).spawn(jobs);
    let summary = handle.join()?;

    let bodies = sink.bodies.lock().map_err(|_| "sink lock poisoned")?;
    for (file, body) in bodies.iter() {
        let digest = Sha256::digest(body);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        println!("{}  {} bytes  sha256 {hex}", file.display(), body.len());
    }
    println!(
        "{} bodies kept in memory ({} not found)",
        bodies.len(),
        summary.not_found
    );
    Ok(())
}
