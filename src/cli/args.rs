//! The raw command line, as clap reads it: every subcommand's arguments, their help and defaults.
//! Nothing here is checked beyond what clap checks; `check` turns these into what a run needs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Crawl(Box<SiteCrawlArgs>),
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
    /// Folder to save the files in (created if missing): the flags, the URLs of a list, the pages
    /// of a crawl.
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
    /// Share this crawl with other workers through the Redis at URL (redis://HOST:PORT, or
    /// redis://:PASSWORD@HOST:PORT; Redis 6.2 or later); every worker runs the same command with
    /// the same --crawl NAME.
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
    /// Neither fetch nor obey robots.txt, and follow links marked nofollow (rel="nofollow",
    /// <meta name="robots" content="nofollow">, X-Robots-Tag: nofollow), which are obeyed
    /// otherwise.
    #[arg(long = "ignore-robots")]
    pub ignore_robots: bool,
    /// Go on with the crawl recorded in DIR (after a crash, kill -9, Ctrl-C or --max-pages): the
    /// pages left are fetched, the ones done are not.
    #[arg(long)]
    pub resume: bool,
    /// Retries of transient failures (connect errors, timeouts, resets, truncated bodies, 408,
    /// 429, 5xx): a page is tried at most N + 1 times, each try later, when its host allows.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// The first pause of a host that keeps failing (refused or reset connections, timeouts, 429,
    /// 503, an unreachable robots.txt), in seconds; it doubles with each failure in a row.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub pause: f64,
    /// The longest pause of a failing host, a server's Retry-After included, in seconds.
    #[arg(long = "pause-max", value_name = "SECS", default_value_t = 60.0)]
    pub pause_max: f64,
    /// Give a host up after N failures in a row: its URLs left end as errors, unrequested.
    #[arg(long = "give-up-after", value_name = "N", default_value_t = 8)]
    pub give_up_after: u32,
    /// Also fetch each page's requisites (wget's -p): images and srcset candidates,
    /// stylesheets (and what they import), icons, scripts, media; from any host, whatever the
    /// depth.
    #[arg(short = 'p', long)]
    pub requisites: bool,
    /// With --requisites: fetch a page's requisites only from the page's own host.
    #[arg(long = "same-host-assets")]
    pub same_host_assets: bool,
    /// Save only what a URL matching this regular expression fetched (repeatable); pages left
    /// out are still read for their links.
    #[arg(long, value_name = "REGEX")]
    pub accept: Vec<String>,
    /// Never save what a URL matching this regular expression fetched (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub reject: Vec<String>,
    /// Save only bodies of this MIME type, e.g. image/gif, or family, e.g. 'image/*'
    /// (repeatable).
    #[arg(long = "accept-type", value_name = "MIME")]
    pub accept_type: Vec<String>,
    /// Save nothing: pages are fetched and read for their links only.
    #[arg(long = "no-files")]
    pub no_files: bool,
    /// Do not read sitemaps (by default: each start host's /sitemap.xml and every Sitemap: line
    /// of robots.txt; their URLs are queued like a start URL's links).
    #[arg(long = "no-sitemaps")]
    pub no_sitemaps: bool,
    /// Also record every exchange of the crawl (pages, robots.txt, redirects, 404s, error
    /// responses) in a web archive: WARC/1.1 files FILE-{timestamp}-{serial}.warc.gz beside FILE
    /// (a .warc.gz or .warc ending of FILE is left out; a folder gets crawl-...), each with a CDXJ
    /// index. With --redis, each worker writes FILE-{worker}-... files.
    #[arg(long, value_name = "FILE")]
    pub warc: Option<PathBuf>,
    /// With --warc: start a new file once the current one has BYTES bytes.
    #[arg(
        long = "warc-max-size",
        value_name = "BYTES",
        default_value_t = flags_actors::archive::DEFAULT_MAX_SIZE,
        requires = "warc"
    )]
    pub warc_max_size: u64,
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
