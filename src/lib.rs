//! `flags`: the *Fluent Python* flags downloader as a real tool.
//!
//! # Layout
//! - [`cli`]: clap's arguments and their checked form; every usage error is found here, before
//!   anything is written.
//! - [`countries`]: the 194 countries of the flag site and the code lists built from arguments.
//! - [`input`]: `-i`, a lazily read list of URLs and the safe file name of each.
//! - [`crawl`]: runs a checked flags crawl (or URL list) on the engine (`flags-actors`).
//! - [`report`]: the book's reports, JSON Lines, verbose lines and exit codes.
//! - [`signals`]: the orderly stop on the first SIGINT or SIGTERM, the exit on the second.
//! - [`server`]: the flag server (`flags serve`), also embedded when nothing answers at a local
//!   label's address.
//! - [`site`]: the generated test site `flags serve --site N` serves beside the flags.
//! - [`site_crawl`]: `flags crawl`, a crawl of a site on the engine's frontier.
//! - [`status`]: `flags status`, the counts of a crawl shared through Redis.

pub mod cli;
pub mod countries;
pub mod crawl;
pub mod input;
pub mod report;
pub mod server;
pub mod signals;
pub mod site;
pub mod site_crawl;
pub mod status;

use std::net::TcpListener;

/// The README's code, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

use actix_web::http::StatusCode;

use cli::ServeArgs;

/// Runs `flags serve` until Ctrl-C; returns the exit code.
pub fn serve(args: &ServeArgs) -> u8 {
    let mut options = args.profile.options();
    if let Some(d) = &args.delay {
        match cli::parse_delay(d) {
            Ok(range) => options.delay = Some(range),
            Err(e) => return usage_error(&e),
        }
    }
    if let Some(p) = args.error_rate {
        if !(0.0..=1.0).contains(&p) {
            return usage_error("--error-rate P must be between 0 and 1");
        }
        options.error_rate = p;
    }
    match StatusCode::from_u16(args.error_status) {
        Ok(s) if s.as_u16() >= 400 => options.error_status = s,
        _ => return usage_error("--error-status CODE must be an HTTP status from 400 to 999"),
    }
    if let Some(dir) = &args.dir {
        if let Err(e) = server::check_dir(dir) {
            return usage_error(&e);
        }
        options.dir = Some(dir.clone());
    }
    if let Some(n) = args.site {
        let site = site::Site::new(n);
        if let Some(dir) = &args.export {
            return match site.export(dir) {
                Ok(()) => {
                    println!("Wrote a test site of {n} pages to {}", dir.display());
                    0
                }
                Err(e) => {
                    eprintln!("flags serve: cannot write {}: {e}", dir.display());
                    1
                }
            };
        }
        options.site = Some(site);
    }
    let port = args.port.unwrap_or(args.profile.port());
    let listener = match TcpListener::bind((args.bind.as_str(), port)) {
        Ok(l) => l,
        Err(e) => return usage_error(&format!("cannot listen on {}:{port}: {e}", args.bind)),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return usage_error(&e.to_string()),
    };
    let system = actix_rt::System::new();
    let result = system.block_on(async move {
        let server = server::start(listener, options, args.workers)?;
        println!("Serving flags at http://{addr}/flags (Ctrl-C to stop)");
        if let Some(n) = args.site {
            println!("Serving a test site of {n} pages at http://{addr}/");
        }
        let handle = server.handle();
        actix_rt::spawn(async move {
            let _ = actix_rt::signal::ctrl_c().await;
            handle.stop(true).await;
        });
        server.await
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("flags serve: {e}");
            1
        }
    }
}

fn usage_error(msg: &str) -> u8 {
    eprintln!("{}", cli::UsageError(msg.to_string()));
    report::EXIT_USAGE
}
