//! The command line: clap's raw arguments, and their checked form ([`Plan`]) that the crawl runs.
//!
//! Every check happens here, before anything is written, so a usage error leaves the disk as it
//! was. Messages follow the book (`*** Usage error: ...`), one line each.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::countries::{self, COUNTRIES, POP20};
use crate::server::Profile;

const EXIT_CODES: &str = "\
Exit codes:
  0    every flag was downloaded or not found
  1    at least one download failed
  2    usage error (nothing was written)
  130  interrupted (Ctrl-C or SIGTERM); a second signal exits at once

Servers: LOCAL http://localhost:8000/flags, DELAY http://localhost:8001/flags, ERROR
http://localhost:8002/flags, REMOTE https://www.fluentpython.com/data/flags. When nothing answers
at LOCAL, DELAY or ERROR, flags starts its built-in server with that profile on a free loopback
port. FLAGS_LOCAL_URL, FLAGS_DELAY_URL, FLAGS_ERROR_URL and FLAGS_REMOTE_URL override the URLs.";

/// Download the flags of the world's countries, concurrently.
#[derive(Debug, Parser)]
#[command(name = "flags", version, after_help = EXIT_CODES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Run the flag server instead of crawling.
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub crawl: CrawlArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the flag site (the book's LOCAL, DELAY and ERROR servers), and a test site.
    Serve(ServeArgs),
    /// Crawl a site: follow its links from the start URLs, politely, and save every page.
    Crawl(SiteCrawlArgs),
    /// Print the counts of a crawl shared through Redis.
    Status(StatusArgs),
}

/// Arguments of a crawl.
#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// Country codes: AA to ZZ, or one letter A to Z for its 26 codes (case-insensitive).
    /// Without codes, -a or -e: the 20 most populous countries.
    #[arg(value_name = "CC")]
    pub cc: Vec<String>,
    /// Get all 194 available flags.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Get flags for every possible code (AA...ZZ, 676 codes).
    #[arg(short = 'e', long)]
    pub every: bool,
    /// Limit to N first codes (after sorting).
    #[arg(short = 'l', long, value_name = "N", allow_negative_numbers = true)]
    pub limit: Option<i64>,
    /// Server to crawl: LOCAL, DELAY, ERROR, REMOTE, or an http(s) URL of a site with the same
    /// layout.
    #[arg(short = 's', long, value_name = "LABEL|URL", default_value = "LOCAL")]
    pub server: String,
    /// Also fetch each flag's metadata.json and save the image as {Country}.gif (the book's flags3).
    #[arg(long)]
    pub metadata: bool,
    /// Retries of transient failures (connect errors, timeouts, resets, truncated bodies, 408,
    /// 429, 5xx), with exponential backoff and jitter; 404 is never retried.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    #[command(flatten)]
    pub common: Common,
    /// Download the URLs listed in FILE (one per line; blank lines and # comments skipped; - for
    /// standard input) instead of flags. Each is saved as DIR/{host}[_{port}]/{path}.
    #[arg(short = 'i', long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// The options of every crawl, `flags` and `flags crawl` alike.
#[derive(Debug, Args)]
pub struct Common {
    /// Maximum concurrent requests (the actor pool size) [default: for flags, 100 for a server on
    /// this machine and 10 for any other; for a crawl, 16; capped by the open-files limit].
    #[arg(
        short = 'm',
        long = "max-req",
        visible_alias = "max_req",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_req: Option<i64>,
    /// Print one line per job instead of the progress bar.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Folder to save the flags in (created if missing).
    #[arg(short = 'd', long, value_name = "DIR", default_value = "downloaded")]
    pub dest: PathBuf,
    /// Print JSON Lines on stdout instead of the text reports.
    #[arg(long)]
    pub json: bool,
    /// Also retry this status (repeatable), e.g. 418 for the ERROR server.
    #[arg(long = "retry-status", value_name = "CODE")]
    pub retry_status: Vec<u16>,
    /// Deadline of each attempt, from connect to the last body byte, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Largest body accepted, in bytes (announced or streamed); larger is an error.
    #[arg(long = "max-size", value_name = "BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_size: u64,
    /// Redirects followed per request (http and https only); 0 disables them.
    #[arg(long = "max-redirects", value_name = "N", default_value_t = 10)]
    pub max_redirects: u8,
    /// Follow redirects from https to plain http (refused by default: what was asked for over
    /// TLS is not fetched in the clear unless you say so).
    #[arg(long = "allow-insecure-redirects")]
    pub allow_insecure_redirects: bool,
    /// Do not download what already exists in DIR (a file already there).
    #[arg(long = "skip-existing")]
    pub skip_existing: bool,
    /// Also trust the certificates in this PEM file for https (a private CA, a test server's
    /// self-signed certificate).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Send this header with every request, as 'Name: value' (repeatable; replaces the default
    /// User-Agent or Accept-Encoding when it names them).
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub header: Vec<String>,
    /// Share this crawl with other workers through the Redis at URL (redis://HOST:PORT); every
    /// worker runs the same command with the same --crawl NAME.
    #[arg(long, value_name = "URL", requires = "crawl_name")]
    pub redis: Option<String>,
    /// The name of the shared crawl (with --redis).
    #[arg(long = "crawl", value_name = "NAME", requires = "redis")]
    pub crawl_name: Option<String>,
    /// With --redis: how long a job stays with a worker that stopped renewing it (it died) before
    /// another takes it over, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub lease: f64,
}

/// Arguments of `flags crawl`.
#[derive(Debug, Args)]
pub struct SiteCrawlArgs {
    /// Where the crawl starts: http(s) URLs; their hosts are in scope.
    #[arg(value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// Requests in flight to one host at most.
    #[arg(long = "per-host", value_name = "N", default_value_t = 2)]
    pub per_host: usize,
    /// Pause between one request's end and the next one's start, per host, in seconds (a host then
    /// gets one request at a time). robots.txt's Crawl-delay raises it (up to 30 s).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub delay: f64,
    /// Follow links at most N steps from a start URL (start URLs are depth 0).
    #[arg(long = "max-depth", value_name = "N")]
    pub max_depth: Option<u32>,
    /// Visit at most N pages.
    #[arg(long = "max-pages", value_name = "N")]
    pub max_pages: Option<u64>,
    /// Also crawl this domain and its subdomains (repeatable).
    #[arg(long = "allow-domain", value_name = "DOMAIN")]
    pub allow_domain: Vec<String>,
    /// Only visit URLs matching this regular expression (repeatable; start URLs always).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Never visit URLs matching this regular expression (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Do not fetch or obey robots.txt.
    #[arg(long = "ignore-robots")]
    pub ignore_robots: bool,
    /// Go on with the crawl recorded in DIR (after a crash, kill -9, Ctrl-C or --max-pages): the
    /// pages left are fetched, the ones done are not.
    #[arg(long)]
    pub resume: bool,
    /// Retries of transient failures (connect errors, timeouts, resets, truncated bodies, 408,
    /// 429, 5xx); a 429 or 503 also pauses its host (Retry-After, or a doubling pause).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `flags status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The Redis the crawl is shared through (redis://HOST:PORT).
    #[arg(long, value_name = "URL")]
    pub redis: String,
    /// The name of the shared crawl.
    #[arg(long = "crawl", value_name = "NAME")]
    pub crawl_name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `flags serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The book's server to mimic: its port and behaviour (explicit options win).
    #[arg(long, value_enum, default_value = "local")]
    pub profile: Profile,
    /// Port to listen on [default: the profile's: 8000, 8001 or 8002].
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Delay every response (404s included): SECS, or MIN..MAX for a uniform random delay.
    #[arg(long, value_name = "SECS|MIN..MAX")]
    pub delay: Option<String>,
    /// Probability (0 to 1) of answering an error instead.
    #[arg(long = "error-rate", value_name = "P")]
    pub error_rate: Option<f64>,
    /// Status of the injected errors.
    #[arg(long = "error-status", value_name = "CODE", default_value_t = 418)]
    pub error_status: u16,
    /// Serve a real flags folder ({DIR}/{cc}/{cc}.gif and metadata.json) instead of the built-in
    /// images.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Also serve a generated test site of N linked pages at / (robots.txt, 404 links, off-site
    /// links, a redirect, query strings, fragments, a <base href>), for `flags crawl`.
    #[arg(long, value_name = "N")]
    pub site: Option<u32>,
    /// With --site: write the site as static files into DIR (for another web server) and exit.
    #[arg(long, value_name = "DIR", requires = "site")]
    pub export: Option<PathBuf>,
}

/// Where the crawl goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `LOCAL`, `DELAY`, `ERROR`, `REMOTE` or `URL`.
    pub label: String,
    /// The site's base URL, without a trailing slash.
    pub base: String,
    /// The built-in server profile to start when nothing answers there.
    pub profile: Option<Profile>,
}

/// A checked crawl.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The codes, sorted, deduplicated and limited.
    pub codes: Vec<String>,
    /// The requested pool size, if given.
    pub max_req: Option<usize>,
    /// The site.
    pub target: Target,
    /// The checked arguments that pass through unchanged.
    pub dest: PathBuf,
    /// Per-attempt deadline.
    pub timeout: Duration,
    /// The URL list (`-i`), if any; `-` is standard input.
    pub input: Option<PathBuf>,
    /// Extra trusted certificates (`--cacert`), PEM.
    pub cacert: Option<Vec<u8>>,
}

/// A usage error: the one line to print, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("*** Usage error: {0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// The URL of a label, from its `FLAGS_{LABEL}_URL` variable or the book's default.
fn label_url(label: &str) -> Option<(String, Option<Profile>)> {
    let (default, profile) = match label {
        "LOCAL" => ("http://localhost:8000/flags", Some(Profile::Local)),
        "DELAY" => ("http://localhost:8001/flags", Some(Profile::Delay)),
        "ERROR" => ("http://localhost:8002/flags", Some(Profile::Error)),
        "REMOTE" => ("https://www.fluentpython.com/data/flags", None),
        _ => return None,
    };
    let url = std::env::var(format!("FLAGS_{label}_URL")).unwrap_or_else(|_| default.to_string());
    Some((url, profile))
}

/// Checks an http(s) URL with a host; returns it without a trailing slash.
pub fn check_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a valid URL: {raw:?} ({e})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "only http and https URLs are supported, not {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("the URL has no host: {raw:?}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "the server URL must not have a query or fragment: {raw:?}"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Resolves `-s`: a label (case-insensitive) or an http(s) URL.
pub fn target(server: &str) -> Result<Target, UsageError> {
    let label = server.to_ascii_uppercase();
    if let Some((url, profile)) = label_url(&label) {
        let base = check_url(&url).map_err(|e| usage(format!("FLAGS_{label}_URL: {e}")))?;
        return Ok(Target {
            label,
            base,
            profile,
        });
    }
    if !server.contains("://") {
        return Err(usage(
            "--server LABEL must be one of LOCAL, DELAY, ERROR, REMOTE, or an http(s) URL",
        ));
    }
    let base = check_url(server).map_err(|e| usage(format!("--server: {e}")))?;
    Ok(Target {
        label: "URL".into(),
        base,
        profile: None,
    })
}

impl CrawlArgs {
    /// Checks every argument; nothing is written before this succeeds.
    pub fn plan(&self) -> Result<Plan, UsageError> {
        let expanded = countries::expand(&self.cc)
            .ok_or_else(|| usage("each CC argument must be A to Z or AA to ZZ."))?;
        let checked = self.common.check()?;
        if let Some(l) = self.limit {
            if l < 1 {
                return Err(usage("--limit N must be >= 1"));
            }
        }
        if let Some(input) = &self.input {
            if self.all || self.every || !self.cc.is_empty() || self.limit.is_some() {
                return Err(usage(
                    "--input cannot be combined with country codes, -a, -e or -l",
                ));
            }
            if self.metadata {
                return Err(usage("--metadata works with flags only, not with --input"));
            }
            check_input(input)?;
        }
        let target = target(&self.server)?;

        let mut codes: Vec<String> = if self.every {
            countries::every_code()
        } else if self.all {
            COUNTRIES.iter().map(|(cc, _)| cc.to_string()).collect()
        } else if expanded.is_empty() {
            POP20.iter().map(|cc| cc.to_string()).collect()
        } else {
            expanded
        };
        codes.sort();
        codes.dedup();
        if let Some(l) = self.limit {
            codes.truncate(usize::try_from(l).unwrap_or(usize::MAX));
        }
        Ok(Plan {
            codes,
            max_req: checked.max_req,
            target,
            dest: checked.dest,
            timeout: checked.timeout,
            input: self.input.clone(),
            cacert: checked.cacert,
        })
    }
}

impl Common {
    /// The shared crawl these options name, if any.
    pub fn shared(&self) -> Option<flags_actors::SharedCrawl> {
        let (url, name) = (self.redis.as_ref()?, self.crawl_name.as_ref()?);
        Some(
            flags_actors::SharedCrawl::new(url.as_str(), name.as_str())
                .lease(Duration::from_secs_f64(self.lease)),
        )
    }
}

/// What every crawl checks and keeps of [`Common`].
#[derive(Debug, Clone)]
pub struct Checked {
    /// The requested pool size, if given.
    pub max_req: Option<usize>,
    /// Where files go.
    pub dest: PathBuf,
    /// Per-attempt deadline.
    pub timeout: Duration,
    /// Extra trusted certificates (`--cacert`), PEM.
    pub cacert: Option<Vec<u8>>,
}

impl Common {
    /// Checks the options every crawl shares.
    pub fn check(&self) -> Result<Checked, UsageError> {
        if let Some(m) = self.max_req {
            if m < 1 {
                return Err(usage("--max-req CONCURRENT must be >= 1"));
            }
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 86_400.0) {
            return Err(usage(
                "--timeout SECS must be greater than 0 and at most 86400",
            ));
        }
        if !(self.lease.is_finite() && (0.5..=86_400.0).contains(&self.lease)) {
            return Err(usage("--lease SECS must be between 0.5 and 86400"));
        }
        if let Some(url) = &self.redis {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(usage(format!(
                    "--redis {url}: a Redis URL is redis://HOST:PORT"
                )));
            }
        }
        if self.max_size == 0 {
            return Err(usage("--max-size BYTES must be >= 1"));
        }
        for h in &self.header {
            let valid = split_header(h).is_some_and(|(name, value)| {
                flags_actors::Config::builder()
                    .header(name, value)
                    .build()
                    .is_ok()
            });
            if !valid {
                return Err(usage(format!(
                    "-H {h:?}: a header is 'Name: value', with a valid name and value"
                )));
            }
        }
        if let Some(s) = self
            .retry_status
            .iter()
            .find(|&&s| !(400..600).contains(&s) || s == 404)
        {
            return Err(usage(format!(
                "--retry-status {s}: only 400 to 599 can be retried, never 404"
            )));
        }
        let cacert = match &self.cacert {
            Some(path) => Some(read_cacert(path)?),
            None => None,
        };
        check_dest(&self.dest)?;
        Ok(Checked {
            max_req: self
                .max_req
                .map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
            dest: self.dest.clone(),
            timeout: Duration::from_secs_f64(self.timeout),
            cacert,
        })
    }
}

/// `-H 'Name: value'` as its name and value.
pub fn split_header(raw: &str) -> Option<(&str, &str)> {
    let (name, value) = raw.split_once(':')?;
    (!name.trim().is_empty()).then_some((name.trim(), value.trim()))
}

/// `--cacert`: a readable PEM file with at least one certificate.
fn read_cacert(path: &std::path::Path) -> Result<Vec<u8>, UsageError> {
    let pem =
        std::fs::read(path).map_err(|e| usage(format!("--cacert {}: {e}", path.display())))?;
    flags_actors::Config::builder()
        .root_certificates_pem(&pem)
        .build()
        .map_err(|e| usage(format!("--cacert {}: {e}", path.display())))?;
    Ok(pem)
}

/// The URL list must be a readable file (or `-`).
fn check_input(input: &std::path::Path) -> Result<(), UsageError> {
    if input.as_os_str() == "-" {
        return Ok(());
    }
    let fail = |e: &dyn std::fmt::Display| usage(format!("--input {}: {e}", input.display()));
    let meta = std::fs::metadata(input).map_err(|e| fail(&e))?;
    if meta.is_dir() {
        return Err(fail(&"is a folder, not a file"));
    }
    std::fs::File::open(input).map_err(|e| fail(&e))?;
    Ok(())
}

/// DEST must be a folder or not exist yet (it is created when the crawl starts).
fn check_dest(dest: &std::path::Path) -> Result<(), UsageError> {
    if dest.as_os_str().is_empty() {
        return Err(usage("--dest DIR must not be empty"));
    }
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => {
            if m.permissions().readonly() {
                return Err(usage(format!(
                    "--dest {}: the folder is read-only",
                    dest.display()
                )));
            }
            Ok(())
        }
        Ok(_) => Err(usage(format!(
            "--dest {}: exists and is not a folder",
            dest.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The nearest existing ancestor must be a folder, or creating DEST will fail.
            let mut parent = dest.parent();
            while let Some(p) = parent {
                if p.as_os_str().is_empty() {
                    break;
                }
                match std::fs::metadata(p) {
                    Ok(m) if m.is_dir() => return Ok(()),
                    Ok(_) => {
                        return Err(usage(format!(
                            "--dest {}: {} is not a folder",
                            dest.display(),
                            p.display()
                        )))
                    }
                    Err(_) => parent = p.parent(),
                }
            }
            Ok(())
        }
        Err(e) => Err(usage(format!("--dest {}: {e}", dest.display()))),
    }
}

/// Parses `--delay`: `SECS` or `MIN..MAX`.
pub fn parse_delay(s: &str) -> Result<(Duration, Duration), String> {
    let secs = |v: &str| -> Result<Duration, String> {
        let f: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("--delay: not a number: {v:?}"))?;
        if !(f.is_finite() && (0.0..=3600.0).contains(&f)) {
            return Err(format!("--delay: {v} must be between 0 and 3600 seconds"));
        }
        Ok(Duration::from_secs_f64(f))
    };
    match s.split_once("..") {
        Some((a, b)) => {
            let (min, max) = (secs(a)?, secs(b)?);
            if min > max {
                return Err(format!("--delay {s}: MIN is larger than MAX"));
            }
            Ok((min, max))
        }
        None => secs(s).map(|d| (d, d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("flags").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_and_code_lists() {
        let plan = parse(&[]).crawl.plan().unwrap();
        assert_eq!(plan.codes.len(), 20);
        assert!(plan.codes.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(plan.target.label, "LOCAL");
        assert_eq!(parse(&["-e"]).crawl.plan().unwrap().codes.len(), 676);
        assert_eq!(parse(&["-a"]).crawl.plan().unwrap().codes.len(), 194);
        assert_eq!(
            parse(&["b", "BA", "-l", "5"]).crawl.plan().unwrap().codes,
            ["BA", "BB", "BC", "BD", "BE"]
        );
        assert_eq!(
            parse(&["--max_req", "3"]).crawl.plan().unwrap().max_req,
            Some(3)
        );
    }

    #[test]
    fn targets() {
        assert_eq!(target("delay").unwrap().profile, Some(Profile::Delay));
        assert_eq!(
            target("http://127.0.0.1:9/flags/").unwrap().base,
            "http://127.0.0.1:9/flags"
        );
        assert!(target("ftp://x/flags").is_err());
        assert!(target("nowhere").is_err());
        assert!(target("http://").is_err());
    }

    #[test]
    fn delays() {
        assert_eq!(parse_delay("0.5").unwrap().0, Duration::from_millis(500));
        assert_eq!(parse_delay("0.5..5").unwrap().1, Duration::from_secs(5));
        assert!(parse_delay("5..1").is_err());
        assert!(parse_delay("-1").is_err());
        assert!(parse_delay("x").is_err());
    }
}
