//! A shared crawl ends, and never lies: the crawl policy is the in-memory crawl's (the same pauses
//! and give-up rules), a worker whose options differ or whose Redis cannot run the crawl is
//! refused, a crawl whose state vanished from Redis stops every worker with an error, a dead
//! worker's jobs move within the lease and a third, every report says what the other workers
//! did, the exit code says whether the whole crawl is complete and clean, and no output shows the
//! Redis password. Against a real `redis-server` (skipped, saying why, where it is missing).

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::crawl::{files, json_lines, summary, Quirks, SiteServer};
use super::hostile::{incident_starts, page, status, Answer, Scripted};
use super::redis::Redis;
use super::{flags, stderr, stdout};

/// `flags crawl URL --redis … --crawl NAME --json -d DIR EXTRA…`.
fn worker(
    redis: &Redis,
    name: &str,
    url: &str,
    dest: &std::path::Path,
    extra: &[&str],
) -> std::process::Command {
    let mut cmd = flags();
    cmd.args([
        "crawl",
        url,
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

/// A worker running, its output read all along on a thread of its own: a worker whose output
/// pipe nobody reads would stall, holding its jobs, and the others would wait for them.
struct Running {
    pid: i32,
    output: std::thread::JoinHandle<std::process::Output>,
}

impl Running {
    /// kill -9.
    fn kill(&self) {
        // SAFETY: kill(2) with the pid of a child we started.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }

    fn wait(self) -> std::process::Output {
        self.output.join().unwrap()
    }
}

fn spawn(cmd: &mut std::process::Command) -> Running {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running {
        pid: child.id() as i32,
        output: std::thread::spawn(move || child.wait_with_output().unwrap()),
    }
}

fn wait_all(running: Vec<Running>) -> Vec<std::process::Output> {
    running.into_iter().map(Running::wait).collect()
}

/// Waits until `ready` holds (at most 60 s).
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_shared_crawl_pauses_and_gives_up_hosts_as_a_crawl_in_memory_does() {
    let Some(redis) = Redis::start() else { return };
    let server = Scripted::start(|path, _| match path {
        "/robots.txt" => status(404),
        "/" => page(&["/p/1", "/p/2", "/p/3", "/p/4", "/p/5"]),
        _ => status(503),
    });
    let dest = tempfile::tempdir().unwrap();
    let out = worker(
        &redis,
        "storm",
        &server.base,
        dest.path(),
        &[
            "--pause",
            "0.1",
            "--pause-max",
            "0.4",
            "--give-up-after",
            "3",
            "--retries",
            "5",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = summary(&json_lines(&out)).clone();
    assert_eq!(s["errors"], 5, "{s}");
    // The same schedule as without Redis: three incidents of at most two requests each, their
    // starts 0.1 s and then 0.2 s apart.
    let pages = server.hits_of("/p/");
    assert!(pages.len() <= 6, "{pages:?}");
    let starts = incident_starts(&pages);
    assert_eq!(starts.len(), 3, "{pages:?}");
    assert!(starts[1] - starts[0] >= Duration::from_millis(100));
    assert!(starts[2] - starts[1] >= Duration::from_millis(200));
    assert_eq!(s["shared"]["complete"], true, "{s}");
    assert_eq!(s["shared"]["errors"], 5, "{s}");

    // A Retry-After of a day pauses the host in Redis for --pause-max, not a day.
    let server = Scripted::start(|path, n| match path {
        "/robots.txt" => status(404),
        "/" => page(&["/day"]),
        "/day" if n == 0 => Answer::Plain(
            429,
            vec![("retry-after", "86400".into())],
            b"later".to_vec(),
        ),
        _ => page(&[]),
    });
    let out = worker(
        &redis,
        "day",
        &server.base,
        dest.path(),
        &["--pause", "0.1", "--pause-max", "0.5"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let day = server.hits_of("/day");
    assert_eq!(day.len(), 2);
    assert!(day[1].start - day[0].start >= Duration::from_millis(500));
}

#[test]
fn a_start_url_that_redirects_to_another_host_brings_it_into_a_shared_crawl() {
    let Some(redis) = Redis::start() else { return };
    let server = SiteServer::start(
        50,
        Quirks {
            root_moved: true,
            ..Quirks::default()
        },
    );
    let dest = tempfile::tempdir().unwrap();
    let out = worker(&redis, "moved", &server.url("127.0.0.1"), dest.path(), &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let on_localhost = server
        .hits()
        .iter()
        .filter(|h| h.host == "localhost" && h.path != "/robots.txt")
        .count();
    assert_eq!(
        on_localhost,
        flags::site::Site::new(50).reachable(None).len()
    );
}

#[test]
fn redis_restarted_without_its_data_stops_every_worker_with_an_error() {
    let Some(mut redis) = Redis::start_with(&[], false) else {
        return;
    };
    let server = SiteServer::start(
        3000,
        Quirks {
            delay: Duration::from_millis(10),
            ..Quirks::default()
        },
    );
    let url = server.url("127.0.0.1");
    let dest = tempfile::tempdir().unwrap();
    let mut crawlers: Vec<Running> = (0..2)
        .map(|_| {
            spawn(&mut worker(
                &redis,
                "gone",
                &url,
                dest.path(),
                &["--per-host", "4"],
            ))
        })
        .collect();
    // The flags job too, against a slow flag server.
    let flag_server = super::Serve::start(&["--delay", "0.05"]);
    let flag_dir = tempfile::tempdir().unwrap();
    let flag_worker = spawn(
        flags()
            .args(["-e", "-s", &flag_server.base, "-m", "4"])
            .args(["--redis", &redis.url(), "--crawl", "gone-flags", "-d"])
            .arg(flag_dir.path()),
    );
    wait_for("the crawl got going", || server.hits().len() > 300);
    redis.crash_and_restart(Duration::from_millis(300));
    crawlers.push(flag_worker);
    let outs = wait_all(crawlers);
    for out in outs {
        assert_eq!(out.status.code(), Some(1), "never 'done': {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("is gone from Redis"), "{err}");
    }
}

#[test]
fn flushall_mid_crawl_stops_the_workers_with_an_error() {
    let Some(redis) = Redis::start() else { return };
    let server = SiteServer::start(
        3000,
        Quirks {
            delay: Duration::from_millis(10),
            ..Quirks::default()
        },
    );
    let dest = tempfile::tempdir().unwrap();
    let child = spawn(&mut worker(
        &redis,
        "flushed",
        &server.url("127.0.0.1"),
        dest.path(),
        &["--per-host", "4"],
    ));
    wait_for("the crawl got going", || server.hits().len() > 200);
    assert_eq!(redis.cli(&["FLUSHALL"]).trim(), "OK");
    let out = child.wait();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let s = summary(&json_lines(&out)).clone();
    assert!(
        s["lost"].as_str().unwrap_or("").contains("gone from Redis"),
        "{s}"
    );
}

#[test]
fn a_redis_without_xautoclaim_is_refused_before_anything_is_written() {
    let Some(redis) = Redis::start_with(&["--rename-command", "XAUTOCLAIM", ""], true) else {
        return;
    };
    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("out");
    let out = worker(&redis, "old", "http://127.0.0.1:9/", &target, &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("XAUTOCLAIM"), "{err}");
    assert!(!target.exists());
}

#[test]
fn a_worker_whose_options_differ_is_refused_naming_the_option() {
    let Some(redis) = Redis::start() else { return };
    let server = SiteServer::start(100, Quirks::default());
    let url = server.url("127.0.0.1");
    let dest = tempfile::tempdir().unwrap();
    let first = worker(&redis, "same", &url, dest.path(), &["--max-depth", "3"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let other = tempfile::tempdir().unwrap();
    let target = other.path().join("out");
    for (extra, option) in [
        (vec!["--max-depth", "2"], "--max-depth"),
        (vec!["--max-depth", "3", "--exclude", "/p/1"], "--exclude"),
    ] {
        let out = worker(&redis, "same", &url, &target, &extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(option), "{err}");
        assert!(!target.exists(), "nothing written");
    }
    // Other start URLs are another crawl too.
    let out = worker(
        &redis,
        "same",
        &server.url("localhost"),
        &target,
        &["--max-depth", "3"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("start URLs"), "{}", stderr(&out));
}

#[test]
fn a_dead_workers_jobs_are_taken_over_within_the_lease_and_a_third() {
    let Some(redis) = Redis::start() else { return };
    // The pages stall for the first worker, and answer the one that takes them over.
    let server = Scripted::start(|path, n| match path {
        "/robots.txt" => status(404),
        "/" => page(&["/hold/1", "/hold/2", "/hold/3"]),
        _ if n == 0 => Answer::Stall,
        _ => page(&[]),
    });
    let dest = tempfile::tempdir().unwrap();
    let lease = ["--lease", "1.5", "--per-host", "4", "--timeout", "120"];
    let first = spawn(&mut worker(
        &redis,
        "lease",
        &server.base,
        dest.path(),
        &lease,
    ));
    wait_for("the first worker holds the pages", || {
        server.hits_of("/hold/").len() == 3
    });
    first.kill();
    let killed = Instant::now();
    first.wait();
    let out = worker(&redis, "lease", &server.base, dest.path(), &lease)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again: Vec<Duration> = server
        .hits_of("/hold/")
        .iter()
        .skip(3)
        .map(|h| h.start - killed)
        .collect();
    assert_eq!(again.len(), 3);
    // The lease and a third is 2 s; the rest is slack for a loaded machine.
    assert!(
        again.iter().all(|d| *d < Duration::from_secs(4)),
        "{again:?}"
    );
    let s = summary(&json_lines(&out)).clone();
    assert_eq!(s["downloaded"], 3, "{s}");
    assert_eq!(s["shared"]["complete"], true, "{s}");
}

#[test]
fn reports_say_what_other_workers_did_and_exit_codes_speak_for_the_whole_crawl() {
    let Some(redis) = Redis::start_with(&["--requirepass", "s3cr3t-pw"], true) else {
        return;
    };
    let server = SiteServer::start(
        400,
        Quirks {
            delay: Duration::from_millis(3),
            ..Quirks::default()
        },
    );
    let url = server.url("127.0.0.1");
    let dest = tempfile::tempdir().unwrap();
    let children: Vec<Running> = (0..2)
        .map(|_| {
            spawn(&mut worker(
                &redis,
                "report",
                &url,
                dest.path(),
                &["-m", "4"],
            ))
        })
        .collect();
    let outs = wait_all(children);
    let mut done = 0;
    for out in &outs {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        let text = format!("{}{}", stdout(out), stderr(out));
        assert!(!text.contains("s3cr3t-pw"), "{text}");
        let s = summary(&json_lines(out)).clone();
        let mine = [
            "downloaded",
            "not_found",
            "redirected",
            "errors",
            "skipped",
            "blocked",
            "fetched",
            "sitemaps",
        ]
        .iter()
        .map(|k| s[*k].as_u64().unwrap())
        .sum::<u64>();
        done += mine;
        let all = s["shared"]["ok"].as_u64().unwrap()
            + [
                "not_found",
                "redirected",
                "errors",
                "skipped",
                "blocked",
                "fetched",
                "sitemaps",
            ]
            .iter()
            .map(|k| s["shared"][*k].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(s["shared"]["by_others"].as_u64(), Some(all - mine), "{s}");
        assert_eq!(s["shared"]["complete"], true);
    }
    // The text report says it too, and flags status never shows the password.
    let text = flags()
        .args([
            "crawl",
            &url,
            "--redis",
            &redis.url(),
            "--crawl",
            "report",
            "-d",
        ])
        .arg(dest.path())
        .output()
        .unwrap();
    let t = stdout(&text);
    assert!(
        t.contains("done by other workers.") && t.contains("is complete"),
        "{t}"
    );
    let st = flags()
        .args(["status", "--redis", &redis.url(), "--crawl", "report"])
        .output()
        .unwrap();
    assert!(!format!("{}{}", stdout(&st), stderr(&st)).contains("s3cr3t-pw"));
    assert!(stdout(&st).contains(":***@"), "{}", stdout(&st));
    let bad = flags()
        .args([
            "status",
            "--redis",
            "redis://:s3cr3t-pw@127.0.0.1:9",
            "--crawl",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(!stderr(&bad).contains("s3cr3t-pw"), "{}", stderr(&bad));
    assert!(done > 0);

    // One page that fails for ever: every worker says the shared crawl is not clean (exit 1),
    // whichever of them met the error.
    let failing = Scripted::start(|path, _| match path {
        "/robots.txt" => status(404),
        "/" => page(&["/a", "/b", "/c", "/broken"]),
        "/broken" => status(500),
        _ => page(&[]),
    });
    let children: Vec<Running> = (0..2)
        .map(|_| {
            spawn(&mut worker(
                &redis,
                "unclean",
                &failing.base,
                dest.path(),
                &["--retries", "0"],
            ))
        })
        .collect();
    for out in wait_all(children) {
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert_eq!(summary(&json_lines(&out))["shared"]["errors"], 1);
    }
}

#[test]
fn a_worker_killed_while_storing_leaves_no_temp_file_once_the_crawl_is_complete() {
    let Some(redis) = Redis::start() else { return };
    // /big sends 1.5 of its 2 MiB and then nothing, the first time: the worker is storing it, in
    // pieces, when it is killed. Asked again, it is sent whole.
    let big: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let body = big.clone();
    // One count for the whole server, whichever of its threads answers.
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = crate::common::TestServer::start(move |cfg| {
        let body = body.clone();
        let asked = std::sync::Arc::clone(&asked);
        cfg.route(
            "/robots.txt",
            actix_web::web::get().to(|| async { actix_web::HttpResponse::NotFound().finish() }),
        );
        cfg.route(
            "/",
            actix_web::web::get().to(|| async {
                actix_web::HttpResponse::Ok()
                    .content_type("text/html")
                    .body("<a href=/big>big</a>")
            }),
        );
        cfg.route(
            "/big",
            actix_web::web::get().to(move || {
                let body = body.clone();
                let first = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                async move {
                    use futures_util::StreamExt;
                    let len = body.len();
                    let head = actix_web::web::Bytes::from(body[..1536 * 1024].to_vec());
                    let tail = actix_web::web::Bytes::from(body[1536 * 1024..].to_vec());
                    let chunks: Vec<Result<actix_web::web::Bytes, std::io::Error>> = if first {
                        vec![Ok(head)]
                    } else {
                        vec![Ok(head), Ok(tail)]
                    };
                    let stream = futures_util::stream::iter(chunks);
                    let stream: std::pin::Pin<
                        Box<
                            dyn futures_util::Stream<
                                Item = Result<actix_web::web::Bytes, std::io::Error>,
                            >,
                        >,
                    > = if first {
                        Box::pin(stream.chain(futures_util::stream::pending()))
                    } else {
                        Box::pin(stream)
                    };
                    actix_web::HttpResponse::Ok()
                        .content_type("application/octet-stream")
                        .no_chunking(len as u64)
                        .streaming(stream)
                }
            }),
        );
    });
    let dest = tempfile::tempdir().unwrap();
    let temp_files = |dir: &std::path::Path| {
        super::names(dir)
            .into_iter()
            .filter(|n| n.starts_with(".flags-") && n.ends_with(".part"))
            .count()
    };
    // The page `/` goes through a temp file too, for an instant: only a temp file holding more
    // than a MiB is /big's, half stored.
    let big_half_stored = |dir: &std::path::Path| {
        super::names(dir).into_iter().any(|n| {
            n.starts_with(".flags-")
                && n.ends_with(".part")
                && std::fs::metadata(dir.join(&n)).is_ok_and(|m| m.len() > 1024 * 1024)
        })
    };
    let opts = ["--lease", "1", "--timeout", "120"];
    let first = spawn(&mut worker(
        &redis,
        "part",
        &server.base,
        dest.path(),
        &opts,
    ));
    wait_for("the first worker is storing /big", || {
        big_half_stored(dest.path())
    });
    first.kill();
    first.wait();
    assert_eq!(temp_files(dest.path()), 1, "the killed worker's temp file");
    let out = worker(&redis, "part", &server.base, dest.path(), &opts)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        temp_files(dest.path()),
        0,
        "removed once the crawl is complete"
    );
    let stored: Vec<String> = files(dest.path());
    assert_eq!(stored.len(), 2, "{stored:?}");
    let big_file = stored.iter().find(|f| f.ends_with("big")).unwrap();
    assert_eq!(std::fs::read(dest.path().join(big_file)).unwrap(), big);
}
