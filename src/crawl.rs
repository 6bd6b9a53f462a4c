//! Runs a checked flags crawl (the book's job, or a URL list with `-i`): finds or starts the
//! server, builds the jobs, runs the engine (alone, or as a worker of a crawl shared through
//! Redis), and reports (see `report`).

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use flags_actors::{Config, Crawler, DirSink, Job, Namer, Progress};
use futures_util::StreamExt;

use crate::cli::{CrawlArgs, Plan, UsageError};
use crate::input::UrlLines;
use crate::report::{
    connections_line, exit_code, final_report, initial_report, json_line, out, shared_json,
    verbose_line, EXIT_ERRORS, EXIT_USAGE,
};
use crate::server::{self, Profile};
use crate::signals::Signals;

/// Open files kept free for everything that is not a connection (writer temp files, stdio, the
/// embedded server, the runtime).
const FD_RESERVE: u64 = 64;

/// Names a flag after its country, from `metadata.json` (the book's flags3), safely.
struct CountryNamer;

impl Namer for CountryNamer {
    fn name(&self, _job: &Job, meta: &[u8]) -> Result<PathBuf, String> {
        let value: serde_json::Value =
            serde_json::from_slice(meta).map_err(|e| format!("metadata.json is not JSON: {e}"))?;
        let country = value
            .get("country")
            .and_then(|c| c.as_str())
            .ok_or("metadata.json has no \"country\" string")?;
        let name =
            safe_file_stem(country).ok_or_else(|| format!("unusable country name {country:?}"))?;
        Ok(PathBuf::from(format!("{name}.gif")))
    }
}

/// A file name stem no server can use to escape DEST: spaces become `_`; path separators, control
/// characters and characters Windows refuses are dropped; leading dots are removed (no `..`, no
/// hidden files); at most 100 bytes.
pub fn safe_file_stem(raw: &str) -> Option<String> {
    let safe = flags_actors::safe_segment(&raw.replace(' ', "_"))?;
    let trimmed = safe.trim_end_matches(['.', '_']);
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// True when something accepts TCP connections at the URL's host and port.
fn answers(base: &str) -> bool {
    let Ok(url) = url::Url::parse(base) else {
        return false;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

/// True when the URL's host is this machine.
pub(crate) fn is_loopback(base: &str) -> bool {
    url::Url::parse(base)
        .ok()
        .and_then(|u| {
            u.host().map(|h| match h {
                url::Host::Domain(d) => d == "localhost",
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            })
        })
        .unwrap_or(false)
}

/// Raises the soft open-files limit to the hard one and returns it.
fn open_files_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    }
}

/// The pool size: the request, or the default for the site; never more than the jobs; checked
/// against the open-files limit.
pub(crate) fn pool_size(
    max_req: Option<usize>,
    jobs: Option<usize>,
    local: bool,
) -> Result<usize, UsageError> {
    let wanted = max_req.unwrap_or(if local { 100 } else { 10 });
    let actual = wanted.min(jobs.unwrap_or(usize::MAX)).max(1);
    let limit = open_files_limit();
    let need = actual as u64 * 2 + FD_RESERVE; // a metadata request may open a second connection
    if need > limit {
        let most = (limit.saturating_sub(FD_RESERVE) / 2).max(1);
        return Err(UsageError(format!(
            "--max-req {actual} needs about {need} open files, but the limit (ulimit -n) is {limit}; \
             use --max-req {most} or less, or raise the limit"
        )));
    }
    Ok(actual)
}

/// With `--redis`: Redis must answer before anything is written.
pub(crate) fn check_redis(common: &crate::cli::Common) -> Result<(), UsageError> {
    let Some(shared) = common.shared() else {
        return Ok(());
    };
    let url = shared.redis_url();
    let runtime = actix_rt::Runtime::new()
        .map_err(|e| UsageError(format!("--redis {url}: cannot start a runtime: {e}")))?;
    runtime
        .block_on(shared.check())
        .map_err(|e| UsageError(format!("--redis {url}: cannot connect: {e}")))
}

/// Runs the crawl and returns the exit code.
pub fn run(args: &CrawlArgs) -> u8 {
    let plan = match args
        .plan()
        .and_then(|p| check_redis(&args.common).map(|()| p))
    {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let system = actix_rt::System::new();
    system.block_on(crawl(args, plan))
}

/// Where the jobs come from.
enum Source {
    /// The flags of a site (`{site}/{cc}/{cc}.gif`).
    Flags { site: String, note: String },
    /// A URL list (`-i`).
    Urls { name: String },
}

/// Opens the `-i` list: a file, or standard input for `-`.
fn url_lines(path: &std::path::Path) -> std::io::Result<Box<dyn Iterator<Item = Job> + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(UrlLines::new(std::io::BufReader::new(
            std::io::stdin(),
        ))));
    }
    let file = std::fs::File::open(path)?;
    Ok(Box::new(UrlLines::new(std::io::BufReader::with_capacity(
        64 * 1024,
        file,
    ))))
}

async fn crawl(args: &CrawlArgs, plan: Plan) -> u8 {
    let signals = Signals::install();
    let started = Instant::now();
    let mut embedded = None;
    let (source, mut jobs): (Source, Box<dyn Iterator<Item = Job> + Send>) = match &plan.input {
        Some(path) => match url_lines(path) {
            Ok(lines) => {
                let name = if path.as_os_str() == "-" {
                    "standard input".to_string()
                } else {
                    path.display().to_string()
                };
                (Source::Urls { name }, lines)
            }
            Err(e) => {
                eprintln!("{}", UsageError(format!("--input {}: {e}", path.display())));
                return EXIT_USAGE;
            }
        },
        None => {
            let mut site = plan.target.base.clone();
            let mut note = String::new();
            if let Some(profile) = plan.target.profile.filter(|_| !answers(&site)) {
                match start_embedded(profile) {
                    Ok((server, base)) => {
                        note = format!(" (built-in server: nothing answered at {site})");
                        site = base;
                        embedded = Some(server);
                    }
                    Err(e) => {
                        eprintln!("flags: cannot start the built-in server: {e}");
                        return EXIT_ERRORS;
                    }
                }
            }
            let jobs = flag_jobs(&plan.codes, &site, args.metadata);
            (Source::Flags { site, note }, Box::new(jobs.into_iter()))
        }
    };
    // The default pool suits the first target: generous on this machine, polite elsewhere.
    let peeked = jobs.next();
    let local = embedded.is_some() || peeked.as_ref().is_some_and(|j| is_loopback(&j.url));
    let total = match source {
        Source::Flags { .. } => Some(plan.codes.len()),
        Source::Urls { .. } => None,
    };
    let pool = match pool_size(plan.max_req, total, local) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let config = match config(args, &plan, pool) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", UsageError(e.to_string()));
            return EXIT_USAGE;
        }
    };
    // A folder shared with other workers keeps their temp files: they may be writing them now.
    let sink = match args.common.shared() {
        Some(_) => DirSink::joining(&plan.dest),
        None => DirSink::new(&plan.dest),
    };
    let sink = match sink {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "{}",
                UsageError(format!("--dest {}: {e}", plan.dest.display()))
            );
            return EXIT_USAGE;
        }
    };

    if args.common.json {
        let (server, label) = match &source {
            Source::Flags { site, .. } => (site.clone(), plan.target.label.clone()),
            Source::Urls { name } => (name.clone(), "INPUT".to_string()),
        };
        out(serde_json::json!({
            "type": "start",
            "server": server,
            "label": label,
            "jobs": total,
            "pool_size": pool,
        }));
    } else {
        match &source {
            Source::Flags { site, note } => initial_report(&plan, &format!("{site}{note}"), pool),
            Source::Urls { name } => {
                out(format_args!("URL list: {name}"));
                connections_line(pool);
            }
        }
    }
    let mut crawler = Crawler::new(config, sink);
    if args.common.json {
        crawler = crawler.on_event(json_line);
    } else if args.common.verbose {
        crawler = crawler.on_event(verbose_line);
    }
    let shutdown = signals.first_then_exit_on_second();
    let summary = match (args.common.shared(), &source) {
        // Shared through Redis: every worker offers the whole list; Redis queues each job once.
        (Some(shared), _) => {
            let jobs: Vec<Job> = peeked.into_iter().chain(jobs).collect();
            match crawler.run_shared(jobs, shared, shutdown).await {
                Ok(summary) => summary,
                Err(e) => {
                    eprintln!("{}", UsageError(e.to_string()));
                    return EXIT_USAGE;
                }
            }
        }
        (None, _) => match source {
            // A URL list may be a pipe that takes its time: it is read on a thread of its own, a
            // pool's worth of lines ahead, so a slow writer never stalls the downloads under way.
            Source::Urls { .. } => {
                let rest = flags_actors::blocking_source(jobs, pool);
                let jobs = futures_util::stream::iter(peeked).chain(rest);
                crawler.run_stream(jobs, shutdown).await
            }
            // Chained rather than wrapped, so the exact length of the flag list reaches the bar.
            Source::Flags { .. } => crawler.run(peeked.into_iter().chain(jobs), shutdown).await,
        },
    };
    let elapsed = started.elapsed();
    if let Some(server) = embedded {
        server.stop(false).await;
    }

    // Shared through Redis, the list is the crawl's: the other workers did the rest of it.
    let not_attempted = match total {
        Some(t) if summary.shared.is_none() => (t as u64).saturating_sub(summary.finished()),
        _ => summary.cancelled,
    };
    if args.common.json {
        let mut line = serde_json::json!({
            "type": "summary",
            "jobs": total.map_or(summary.jobs, |t| t as u64),
            "downloaded": summary.downloaded,
            "not_found": summary.not_found,
            "errors": summary.errors,
            "skipped": summary.skipped,
            "not_attempted": not_attempted,
            "interrupted": summary.interrupted,
            "bytes": summary.bytes,
            "elapsed": elapsed.as_secs_f64(),
        });
        shared_json(&summary, &mut line);
        out(line);
    } else {
        let what = match source {
            Source::Flags { .. } => "flag",
            Source::Urls { .. } => "file",
        };
        final_report(&summary, what, not_attempted, elapsed);
    }
    exit_code(&summary)
}

/// The jobs of a flag crawl: `{site}/{cc}/{cc}.gif` saved as `{CC}.gif`.
fn flag_jobs(codes: &[String], site: &str, metadata: bool) -> Vec<Job> {
    codes
        .iter()
        .map(|cc| {
            let lc = cc.to_lowercase();
            let job = Job::new(
                cc.clone(),
                format!("{site}/{lc}/{lc}.gif"),
                format!("{cc}.gif"),
            );
            if metadata {
                job.with_meta_url(format!("{site}/{lc}/metadata.json"))
            } else {
                job
            }
        })
        .collect()
}

/// The engine's config from the command line.
fn config(args: &CrawlArgs, plan: &Plan, pool: usize) -> Result<Config, flags_actors::ConfigError> {
    let mut builder = common_config(&args.common, plan.timeout, args.retries, pool);
    if args.metadata {
        builder = builder.namer(CountryNamer);
    }
    if let Some(pem) = &plan.cacert {
        builder = builder.root_certificates_pem(pem);
    }
    builder.build()
}

/// The engine's config from the options every crawl shares.
pub(crate) fn common_config(
    common: &crate::cli::Common,
    timeout: Duration,
    retries: u32,
    pool: usize,
) -> flags_actors::ConfigBuilder {
    let args = common;
    let mut builder = Config::builder()
        .pool_size(pool)
        .timeout(timeout)
        .retries(retries)
        .max_body(args.max_size)
        .max_redirects(args.max_redirects)
        .allow_insecure_redirects(args.allow_insecure_redirects)
        .skip_existing(args.skip_existing)
        .progress(if args.verbose {
            Progress::Hidden
        } else {
            Progress::Bar
        });
    for s in &args.retry_status {
        builder = builder.retry_status(*s);
    }
    for (name, value) in args
        .header
        .iter()
        .filter_map(|h| crate::cli::split_header(h))
    {
        builder = builder.header(name, value);
    }
    builder
}

/// Starts the built-in server with `profile` on a free loopback port, inside this process.
fn start_embedded(profile: Profile) -> std::io::Result<(ServerHandle, String)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}/flags", listener.local_addr()?);
    let server = server::start(listener, profile.options(), 1)?;
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok((handle, base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_cannot_escape() {
        assert_eq!(
            safe_file_stem("United States").as_deref(),
            Some("United_States")
        );
        assert_eq!(
            safe_file_stem("../../etc/passwd").as_deref(),
            Some("etcpasswd")
        );
        assert_eq!(safe_file_stem("a\nb\u{7}c").as_deref(), Some("abc"));
        assert_eq!(safe_file_stem("..").as_deref(), None);
        assert_eq!(safe_file_stem("/").as_deref(), None);
        assert!(safe_file_stem(&"x".repeat(500)).unwrap().len() <= 100);
        assert_eq!(
            safe_file_stem("Côte d'Ivoire").as_deref(),
            Some("Côte_d'Ivoire")
        );
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://localhost:8000/flags"));
        assert!(is_loopback("http://127.0.0.1:8000/flags"));
        assert!(!is_loopback("https://www.fluentpython.com/data/flags"));
    }
}
