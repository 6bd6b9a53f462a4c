//! `flags status`: the counts of a crawl shared through Redis, from any machine.

use flags_actors::SharedCrawl;

use crate::cli::{StatusArgs, UsageError};
use crate::report::{out, shared_counts, EXIT_OK, EXIT_USAGE};

/// Prints the crawl's counts; exit code 2 when Redis does not answer.
pub fn run(args: &StatusArgs) -> u8 {
    let shared = SharedCrawl::new(args.redis.as_str(), args.crawl_name.as_str());
    let status = actix_rt::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(shared.status()));
    let s = match status {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "{}",
                UsageError(format!(
                    "--redis {}: cannot connect: {e}",
                    shared.redis_url()
                ))
            );
            return EXIT_USAGE;
        }
    };
    if args.json {
        let mut line = serde_json::json!({
            "type": "status",
            "crawl": args.crawl_name,
            "done": s.done(),
        });
        shared_counts(&mut line, &s);
        line["exists"] = s.exists.into();
        line["complete"] = s.complete().into();
        out(line);
        return EXIT_OK;
    }
    out(format_args!(
        "Crawl {} at {}{}",
        args.crawl_name,
        shared.redis_url(),
        if s.exists {
            ""
        } else {
            " (no such crawl there)"
        }
    ));
    out(format_args!("{:>9} queued", s.queued));
    out(format_args!("{:>9} in flight", s.in_flight));
    out(format_args!(
        "{:>9} done: {} ok, {} not found, {} redirected, {} errors, {} skipped, {} blocked by robots.txt, {} fetched not saved, {} sitemaps",
        s.done(),
        s.ok,
        s.not_found,
        s.redirected,
        s.errors,
        s.skipped,
        s.blocked,
        s.fetched,
        s.sitemaps
    ));
    out(format_args!(
        "{:>9} in all ({} worker{} joined)",
        s.added,
        s.workers,
        if s.workers == 1 { "" } else { "s" }
    ));
    EXIT_OK
}
