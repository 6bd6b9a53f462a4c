//! `flags crawl`: follows a site's links from the start URLs on the engine's frontier, saves every
//! page as `-i` would, and prints a report (or JSON Lines) like the flags crawl.
//!
//! The crawl's journal is `DIR/.flags-crawl.journal`: written as pages complete, so the same
//! command with `--resume` goes on after any stop, `kill -9` included.
//!
//! With `--warc FILE`, every exchange is also recorded in a web archive ([`warc_options`] says
//! where its files go).

use std::path::Path;
use std::time::{Duration, Instant};

use flags_actors::archive::WarcOptions;
use flags_actors::{CrawlSpec, Crawler, DirSink, Event, HtmlLinks, Progress, Summary};

use crate::cli::{SiteCrawlArgs, UsageError};
use crate::crawl::{check_redis, common_config, pool_size};
use crate::report::{
    exit_code, job_json, out, shared_json, shared_lines, verbose_line, EXIT_USAGE,
};
use crate::signals::Signals;

/// The journal's name inside DEST (hidden, beside the host folders: no host name starts with a
/// dot).
pub const JOURNAL: &str = ".flags-crawl.journal";

/// The index of what the crawl fetched, inside DEST (CDXJ; see README "Files").
pub const INDEX: &str = ".flags-index.cdxj";

/// Fetchers of a crawl unless `-m` says otherwise.
pub const DEFAULT_POOL: usize = 16;

/// Runs `flags crawl` and returns the exit code.
pub fn run(args: &SiteCrawlArgs) -> u8 {
    let (spec, checked) = match plan(args).and_then(|p| check_redis(&args.common).map(|()| p)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    // Scrapy's default of 16 requests in flight: a crawl is bounded by its per-host limit long
    // before it needs more fetchers, unless it spans many hosts (then raise -m).
    let pool = match pool_size(checked.max_req.or(Some(DEFAULT_POOL)), None, false) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let mut builder = common_config(&args.common, checked.timeout, args.retries, pool).progress(
        if args.common.verbose || args.common.json {
            Progress::Hidden
        } else {
            Progress::Bar
        },
    );
    if let Some(pem) = &checked.cacert {
        builder = builder.root_certificates_pem(pem);
    }
    let config = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", UsageError(e.to_string()));
            return EXIT_USAGE;
        }
    };
    // A folder shared with other workers keeps their temp files: they may be writing them now.
    let sink = match args.common.shared() {
        Some(_) => DirSink::joining(&checked.dest),
        None => DirSink::new(&checked.dest),
    };
    let sink = match sink {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "{}",
                UsageError(format!("--dest {}: {e}", checked.dest.display()))
            );
            return EXIT_USAGE;
        }
    };
    let shared = args.common.shared();
    let journal = checked.dest.join(JOURNAL);
    if args.resume && !journal.exists() {
        eprintln!(
            "flags: nothing to resume in {} (no {JOURNAL}): starting afresh",
            checked.dest.display()
        );
    }
    let spec = match &shared {
        // Each worker of a shared crawl keeps an index of its own: they may share the folder.
        Some(shared) => spec.index(checked.dest.join(format!(
            ".flags-index.{}.cdxj",
            flags_actors::safe_segment(shared.consumer_name()).unwrap_or_default()
        ))),
        None => spec
            .journal(&journal)
            .index(checked.dest.join(INDEX))
            .resume(args.resume),
    };
    let spec = match &args.warc {
        Some(file) => spec.warc(warc_options(file, args.warc_max_size)),
        None => spec,
    };
    let spec = match spec.build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}", UsageError(e.to_string()));
            return EXIT_USAGE;
        }
    };
    let seeds: Vec<String> = spec.seeds().map(str::to_string).collect();
    if args.common.json {
        out(serde_json::json!({
            "type": "start",
            "seeds": seeds,
            "pool_size": pool,
            "per_host": args.per_host,
            "resume": args.resume,
        }));
    } else {
        match seeds.as_slice() {
            [one] => out(format_args!("Crawling {one}")),
            many => out(format_args!(
                "Crawling from {} start URLs: {}",
                many.len(),
                many.join(" ")
            )),
        }
        let fetchers = if pool == 1 { "fetcher" } else { "fetchers" };
        let per_host = if args.delay > 0.0 {
            format!("one request at a time per host, {}s apart", args.delay)
        } else {
            format!("at most {} in flight per host", args.per_host)
        };
        out(format_args!("{pool} {fetchers}; {per_host}."));
    }
    let mut crawler = Crawler::new(config, sink);
    if args.common.json {
        crawler = crawler.on_event(json_line);
    } else if args.common.verbose {
        crawler = crawler.on_event(verbose_line);
    }
    let started = Instant::now();
    let system = actix_rt::System::new();
    let result = system.block_on(async move {
        let signals = Signals::install();
        let shutdown = signals.first_then_exit_on_second();
        match shared {
            Some(shared) => crawler.crawl_shared(spec, shared, shutdown).await,
            None => crawler.crawl(spec, shutdown).await,
        }
    });
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}", UsageError(e.to_string()));
            return EXIT_USAGE;
        }
    };
    report(&summary, args.common.json, started.elapsed());
    let code = exit_code(&summary);
    match &summary.archive {
        // An exchange that could not be recorded is a failure of the run, like a page.
        Some(a) if code == 0 && (a.failed > 0 || a.error.is_some()) => 1,
        _ => code,
    }
}

/// Where the files of `--warc FILE` go: beside FILE, named after it without a `.warc.gz` or
/// `.warc` ending (`crawls/site.warc.gz` gives `crawls/site-{timestamp}-{serial}.warc.gz`); an
/// existing folder gets `crawl-…` files inside. Characters other than ASCII letters, digits, `-`,
/// `_` and `.` in the name become `_`.
pub fn warc_options(file: &Path, max_size: u64) -> WarcOptions {
    let (dir, prefix) = if file.is_dir() {
        (file.to_path_buf(), "crawl".to_string())
    } else {
        let name = file.file_name().map_or_else(String::new, |n| {
            let n = n.to_string_lossy();
            let n = n.strip_suffix(".gz").unwrap_or(&n);
            n.strip_suffix(".warc").unwrap_or(n).to_string()
        });
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (dir.to_path_buf(), name)
    };
    WarcOptions::new(dir, &prefix)
        .max_size(max_size)
        .software(format!("flags/{}", env!("CARGO_PKG_VERSION")))
}

/// Checks the arguments: the spec (without its journal yet) and the shared options.
fn plan(
    args: &SiteCrawlArgs,
) -> Result<(flags_actors::CrawlSpecBuilder, crate::cli::Checked), UsageError> {
    let usage = |m: String| UsageError(m);
    let checked = args.common.check()?;
    if args.per_host == 0 {
        return Err(usage("--per-host N must be >= 1".into()));
    }
    if !(args.delay.is_finite() && (0.0..=3600.0).contains(&args.delay)) {
        return Err(usage("--delay SECS must be between 0 and 3600".into()));
    }
    if args.max_pages == Some(0) {
        return Err(usage("--max-pages N must be >= 1".into()));
    }
    if !(args.pause.is_finite() && args.pause > 0.0 && args.pause <= 3600.0) {
        return Err(usage(
            "--pause SECS must be greater than 0 and at most 3600".into(),
        ));
    }
    if !(args.pause_max.is_finite() && (args.pause..=86_400.0).contains(&args.pause_max)) {
        return Err(usage(
            "--pause-max SECS must be at least --pause and at most 86400".into(),
        ));
    }
    if args.give_up_after == 0 {
        return Err(usage("--give-up-after N must be >= 1".into()));
    }
    if args.warc_max_size == 0 {
        return Err(usage("--warc-max-size BYTES must be >= 1".into()));
    }
    if args.common.redis.is_some() && (args.resume || args.max_pages.is_some()) {
        return Err(usage(
            "--resume and --max-pages do not apply to a crawl shared through --redis (Redis keeps \
             its state: start a worker again to go on)"
                .into(),
        ));
    }
    // nofollow goes with robots.txt, as with wget2, Heritrix and StormCrawler.
    let extractor = HtmlLinks
        .obey_nofollow(!args.ignore_robots)
        .requisites(args.requisites);
    let mut spec = CrawlSpec::builder()
        .extractor(extractor)
        .same_host_assets(args.same_host_assets)
        .sitemaps(!args.no_sitemaps)
        .no_files(args.no_files)
        .per_host(args.per_host)
        .delay(Duration::from_secs_f64(args.delay))
        .robots(!args.ignore_robots)
        .pause_first(Duration::from_secs_f64(args.pause))
        .pause_max(Duration::from_secs_f64(args.pause_max))
        .give_up_after(args.give_up_after);
    for url in &args.urls {
        // Any http(s) URL starts a crawl, a query included; its fragment is dropped.
        flags_actors::normalise(url.trim(), None).ok_or_else(|| {
            usage(format!(
                "{url}: not an http(s) URL with a host (a start URL is http://HOST/... or https://...)"
            ))
        })?;
        spec = spec.seed(url.as_str());
    }
    if let Some(d) = args.max_depth {
        spec = spec.max_depth(d);
    }
    if let Some(p) = args.max_pages {
        spec = spec.max_pages(p);
    }
    for d in &args.allow_domain {
        spec = spec.allow_domain(d.as_str());
    }
    for r in &args.include {
        spec = spec.include(r.as_str());
    }
    for r in &args.exclude {
        spec = spec.exclude(r.as_str());
    }
    for r in &args.accept {
        spec = spec.accept(r.as_str());
    }
    for r in &args.reject {
        spec = spec.reject(r.as_str());
    }
    for t in &args.accept_type {
        if !t.contains('/') {
            return Err(usage(format!(
                "--accept-type {t}: a MIME type is TYPE/SUBTYPE, e.g. image/gif or 'image/*'"
            )));
        }
        spec = spec.accept_type(t.as_str());
    }
    if args.same_host_assets && !args.requisites {
        return Err(usage(
            "--same-host-assets goes with --requisites (-p)".into(),
        ));
    }
    // Every value is checked now, before anything is written (the journal path comes later).
    spec.clone().build().map_err(|e| usage(e.to_string()))?;
    Ok((spec, checked))
}

fn json_line(event: &Event) {
    let Event::Job(r) = event else { return };
    let mut line = job_json(r);
    line["depth"] = r.job.depth.into();
    line["parent"] = r.job.parent.clone().into();
    line["links"] = r.links.into();
    line["assets"] = r.assets.into();
    if let flags_actors::Outcome::Redirected(to) = &r.outcome {
        line["location"] = to.clone().into();
    }
    out(line);
}

fn report(s: &Summary, json: bool, elapsed: Duration) {
    if json {
        let mut line = serde_json::json!({
            "type": "summary",
            "pages": s.jobs,
            "downloaded": s.downloaded,
            "not_found": s.not_found,
            "redirected": s.redirected,
            "errors": s.errors,
            "skipped": s.skipped,
            "fetched": s.fetched,
            "cancelled": s.cancelled,
            "discovered": s.discovered,
            "not_visited": s.not_visited,
            "blocked": s.blocked,
            "sitemaps": s.sitemaps,
            "interrupted": s.interrupted,
            "bytes": s.bytes,
            "elapsed": elapsed.as_secs_f64(),
        });
        shared_json(s, &mut line);
        if let Some(a) = &s.archive {
            line["warc"] = serde_json::json!({
                "exchanges": a.exchanges,
                "truncated": a.truncated,
                "failed": a.failed,
                "error": a.error,
                "files": a.files,
                "bytes": a.bytes,
            });
        }
        out(line);
        return;
    }
    out("-".repeat(20));
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    out(format_args!(
        "{:3} page{} downloaded.",
        s.downloaded,
        plural(s.downloaded)
    ));
    let lines = [
        (s.not_found, "not found."),
        (s.redirected, "redirected (followed as links)."),
        (s.errors, if s.errors == 1 { "error." } else { "errors." }),
        (s.skipped, "skipped (already downloaded)."),
        (
            s.fetched,
            "fetched, not saved (--accept, --reject, --accept-type, --no-files).",
        ),
        (s.cancelled, "cancelled (in flight when interrupted)."),
        (s.blocked, "blocked by robots.txt."),
        (s.not_visited, "discovered but not visited."),
    ];
    for (n, what) in lines {
        if n > 0 {
            out(format_args!("{n:3} {what}"));
        }
    }
    shared_lines(s, "page");
    if let Some(a) = &s.archive {
        warc_lines(a);
    }
    out(format_args!("Elapsed time: {:.2}s", elapsed.as_secs_f64()));
}

/// What the web archive holds: `WARC: 812 exchanges in 2 files (1.4 MB): first … last`.
fn warc_lines(a: &flags_actors::archive::ArchiveSummary) {
    let files = match a.files.as_slice() {
        [] => "no file".to_string(),
        [one] => format!("1 file ({}): {}", mega(a.bytes), one.display()),
        [first, .., last] => format!(
            "{} files ({}): {} … {}",
            a.files.len(),
            mega(a.bytes),
            first.display(),
            last.display()
        ),
    };
    let truncated = match a.truncated {
        0 => String::new(),
        n => format!(", {n} cut short"),
    };
    out(format_args!(
        "WARC: {} exchanges{truncated} in {files}",
        a.exchanges
    ));
    if a.failed > 0 || a.error.is_some() {
        eprintln!(
            "flags: WARC: {} exchanges could not be recorded: {}",
            a.failed,
            a.error.as_deref().unwrap_or("unknown error")
        );
    }
}

fn mega(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
