//! Many workers share one crawl through a real `redis-server` (127.0.0.1, a port of its own,
//! append-only file synced on every write). Skipped, saying why, where `redis-server` is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flags::site::Site;

use super::crawl::{files, is_meta, max_in_flight, summary, Quirks, SiteServer};
use super::{closed_port, flags, stdout};

/// A redis-server child, killed (and its folder removed) when dropped.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// Extra configuration (`--requirepass`, `--rename-command`...).
    args: Vec<String>,
    /// Keeps its data on disk (append-only file, synced on every write).
    persistent: bool,
    /// The password, when it asks for one.
    password: Option<String>,
    _tmp: tempfile::TempDir,
}

impl Redis {
    /// Starts one, or `None` (with the reason printed) when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        Redis::start_with(&[], true)
    }

    /// Starts one with extra configuration; without `persistent`, it keeps nothing on disk (a
    /// restart loses every key).
    pub fn start_with(args: &[&str], persistent: bool) -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let password = args
            .windows(2)
            .find(|w| w[0] == "--requirepass")
            .map(|w| w[1].to_string());
        let mut redis = Redis {
            child: None,
            port: closed_port(),
            dir: tmp.path().to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            persistent,
            password,
            _tmp: tmp,
        };
        redis.launch();
        Some(redis)
    }

    fn launch(&mut self) {
        let aof = if self.persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", aof, "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9, then start again on the same port with the same data.
    pub fn crash_and_restart(&mut self, down: Duration) {
        self.kill();
        std::thread::sleep(down);
        self.launch();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Runs a command with redis-cli.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string()]);
        if let Some(p) = &self.password {
            cmd.args(["-a", p, "--no-auth-warning"]);
        }
        let out = cmd.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A worker of the shared crawl `name`.
fn worker(redis: &Redis, name: &str, site: &str, dest: &Path, extra: &[&str]) -> Command {
    let mut cmd = flags();
    cmd.args([
        "crawl",
        site,
        "--redis",
        &redis.url(),
        "--crawl",
        name,
        "--json",
        "-d",
    ])
    .arg(dest)
    .args(extra);
    cmd
}

fn status(redis: &Redis, name: &str) -> serde_json::Value {
    let out = flags()
        .args(["status", "--redis", &redis.url(), "--crawl", name, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", super::stderr(&out));
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

/// The crawl's totals add up and it is complete.
fn assert_complete(s: &serde_json::Value, site: &Site) {
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(n("added"), n("queued") + n("in_flight") + n("done"), "{s}");
    assert_eq!((n("queued"), n("in_flight")), (0, 0), "{s}");
    let want = site.reachable(None);
    let pages = want.len() as u64;
    assert_eq!(
        n("ok") + n("not_found") + n("redirected") + n("errors"),
        pages,
        "{s}"
    );
    assert_eq!(n("errors"), 0, "{s}");
}

fn expected_files(site: &Site, base: &str) -> Vec<String> {
    let mut v: Vec<String> = site
        .reachable(None)
        .keys()
        .filter(|p| !p.starts_with("/missing/") && !p.starts_with("/go/"))
        .map(|p| {
            let u = format!("{}{}", base.trim_end_matches('/'), p);
            flags_actors::page_file(&u, true)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn three_workers_crawl_the_site_once_between_them() {
    let Some(redis) = Redis::start() else { return };
    let site = Site::new(20_000);
    let server = SiteServer::start(20_000, Quirks::default());
    let url = server.url("127.0.0.1");
    let dest = tempfile::tempdir().unwrap();
    // Each worker writes to a file: a pipe nobody reads would stall it (and the others would
    // take its jobs over after the lease, as they should).
    let logs = tempfile::tempdir().unwrap();
    let workers: Vec<(Child, PathBuf)> = (0..3)
        .map(|i| {
            let log = logs.path().join(format!("w{i}.jsonl"));
            let child = worker(
                &redis,
                "three",
                &url,
                dest.path(),
                &["-m", "8", "--per-host", "12"],
            )
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
            (child, log)
        })
        .collect();
    let mut downloaded = 0;
    for (mut w, log) in workers {
        assert_eq!(w.wait().unwrap().code(), Some(0));
        let text = std::fs::read_to_string(log).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let s = summary(&lines);
        downloaded += s["downloaded"].as_u64().unwrap();
        assert!(
            s["pages"].as_u64().unwrap() > 0,
            "every worker took a share: {s}"
        );
    }
    let counts = server.counts();
    let twice: Vec<_> = counts
        .iter()
        .filter(|(p, &n)| n > 1 && !is_meta(p))
        .collect();
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
    let fetched: Vec<&String> = counts.keys().filter(|p| !is_meta(p)).collect();
    assert!(fetched == site.reachable(None).keys().collect::<Vec<_>>());
    let s = status(&redis, "three");
    assert_complete(&s, &site);
    assert_eq!(s["ok"].as_u64(), Some(downloaded), "{s}");
    assert_eq!(files(dest.path()), expected_files(&site, &url));
}

#[test]
fn a_worker_killed_mid_crawl_leaves_its_jobs_to_the_others() {
    let Some(redis) = Redis::start() else { return };
    let site = Site::new(20_000);
    let server = SiteServer::start(20_000, Quirks::default());
    let url = server.url("127.0.0.1");
    let dest = tempfile::tempdir().unwrap();
    let spawn = || {
        worker(
            &redis,
            "kill",
            &url,
            dest.path(),
            &["-m", "8", "--per-host", "12", "--lease", "5"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
    };
    let mut victim = spawn();
    let others: Vec<Child> = (0..2).map(|_| spawn()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.hits().len() < 6_000 {
        assert!(Instant::now() < deadline, "the crawl did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    victim.kill().unwrap(); // SIGKILL: its entries stay pending, its slots leased
    victim.wait().unwrap();
    for mut w in others {
        assert_eq!(w.wait().unwrap().code(), Some(0));
    }
    let s = status(&redis, "kill");
    assert_complete(&s, &site);
    let counts = server.counts();
    let most = counts.values().max().copied().unwrap_or(0);
    let again = counts
        .iter()
        .filter(|(p, &n)| n == 2 && !is_meta(p))
        .count();
    eprintln!("{again} pages were fetched again after the kill");
    assert!(most <= 2 || counts.iter().all(|(p, &n)| n <= 2 || is_meta(p)));
    // At most what the victim held: a request per fetcher and a body per store permit.
    assert!(again <= 16, "{again} pages fetched twice");
    assert_eq!(
        files(dest.path()),
        expected_files(&site, &url),
        "every page on disk once"
    );
}

#[test]
fn redis_restarted_mid_crawl_loses_nothing() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let site = Site::new(5_000);
    let server = SiteServer::start(
        5_000,
        Quirks {
            delay: Duration::from_millis(2),
            ..Quirks::default()
        },
    );
    let url = server.url("127.0.0.1");
    let dest = tempfile::tempdir().unwrap();
    let workers: Vec<Child> = (0..2)
        .map(|_| {
            worker(
                &redis,
                "restart",
                &url,
                dest.path(),
                &["-m", "8", "--per-host", "8"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.hits().len() < 1_500 {
        assert!(Instant::now() < deadline, "the crawl did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    redis.crash_and_restart(Duration::from_millis(1500));
    for mut w in workers {
        assert_eq!(w.wait().unwrap().code(), Some(0));
    }
    let s = status(&redis, "restart");
    assert_complete(&s, &site);
    let counts: BTreeMap<String, usize> = server.counts();
    assert!(counts
        .keys()
        .filter(|p| !is_meta(p))
        .eq(site.reachable(None).keys()));
    assert_eq!(files(dest.path()), expected_files(&site, &url));
}

#[test]
fn per_host_holds_across_workers() {
    let Some(redis) = Redis::start() else { return };
    let server = SiteServer::start(
        300,
        Quirks {
            delay: Duration::from_millis(10),
            ..Quirks::default()
        },
    );
    let url = server.url("127.0.0.1");
    let dest = tempfile::tempdir().unwrap();
    let workers: Vec<Child> = (0..3)
        .map(|_| {
            worker(
                &redis,
                "polite",
                &url,
                dest.path(),
                &["-m", "8", "--per-host", "2"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut w in workers {
        assert_eq!(w.wait().unwrap().code(), Some(0));
    }
    let max = max_in_flight(&server.hits());
    assert_eq!(max.get("127.0.0.1"), Some(&2), "{max:?}");
    assert_complete(&status(&redis, "polite"), &Site::new(300));
}

#[test]
fn the_flags_job_through_redis_downloads_each_flag_once() {
    let Some(redis) = Redis::start() else { return };
    let server = super::Serve::start(&[]);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let workers: Vec<Child> = dirs
        .iter()
        .map(|d| {
            flags()
                .args([
                    "-e",
                    "-s",
                    &server.base,
                    "--redis",
                    &redis.url(),
                    "--crawl",
                    "flags",
                ])
                .arg("-d")
                .arg(d.path())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in workers {
        assert_eq!(w.wait_with_output().unwrap().status.code(), Some(0));
    }
    let total: usize = dirs.iter().map(|d| super::names(d.path()).len()).sum();
    assert_eq!(total, 194, "each flag downloaded by one worker");
    let s = status(&redis, "flags");
    assert_eq!(s["ok"], 194);
    assert_eq!(s["not_found"], 482);
    assert_eq!(s["added"], 676);
}

#[test]
fn redis_unreachable_at_start_is_a_usage_error_and_nothing_is_written() {
    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("out");
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let out = flags()
        .args([
            "crawl",
            "http://127.0.0.1:9/",
            "--redis",
            &url,
            "--crawl",
            "x",
            "-d",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = super::stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--redis") && err.contains("cannot connect"),
        "{err}"
    );
    assert!(!target.exists());
}
