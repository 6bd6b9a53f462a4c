//! The checked command line: every check of the arguments happens here, before anything is
//! written, so a usage error leaves the disk as it was. Messages follow the book
//! (`*** Usage error: ...`), one line each.

use std::path::PathBuf;
use std::time::Duration;

use super::args::{Common, CrawlArgs};
use crate::countries::{self, COUNTRIES, POP20};
use crate::server::Profile;

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
    use crate::cli::Cli;
    use clap::Parser;

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
