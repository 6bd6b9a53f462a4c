//! Disk faults: a sink that fails some writes, a destination that vanishes, a full filesystem.

mod common;

use std::io;
use std::path::Path;
use std::process::Command;

use actix_web::{web, HttpResponse};
use common::{body_for, every_code, TestServer};
use flags_actors::{Config, Crawler, DirSink, Event, Job, Outcome, Sink, Summary};

fn server() -> TestServer {
    TestServer::start(|cfg| {
        cfg.route(
            "/{cc}",
            web::get()
                .to(|cc: web::Path<String>| async move { HttpResponse::Ok().body(body_for(&cc)) }),
        );
    })
}

fn jobs(base: &str, n: usize) -> Vec<Job> {
    every_code()
        .into_iter()
        .take(n)
        .map(|cc| Job::new(cc.clone(), format!("{base}/{cc}"), format!("{cc}.gif")))
        .collect()
}

fn run(sink: impl Sink, jobs: Vec<Job>) -> (Vec<Event>, Summary) {
    let config = Config::builder().pool_size(8).build().unwrap();
    let (rx, handle) = Crawler::new(config, sink)
        .event_capacity(10_000)
        .spawn(jobs);
    let events = rx.iter().collect();
    (events, handle.join().unwrap())
}

fn errors(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Job(r) => match &r.outcome {
                Outcome::Error(m) => Some((r.job.key.clone(), m.message.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn hidden_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Fails every write of a code starting with `B`, with an OS-like error; stores the rest on disk.
struct FailsOnB(DirSink);

impl Sink for FailsOnB {
    fn store(&self, job: &Job, file: &Path, body: &mut dyn io::Read) -> io::Result<()> {
        if job.key.starts_with('B') {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "disk says no",
            ));
        }
        self.0.store(job, file, body)
    }
}

#[test]
fn a_sink_that_fails_some_writes_counts_them_as_errors() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let (events, summary) = run(
        FailsOnB(DirSink::new(dir.path()).unwrap()),
        jobs(&server.base, 60),
    );
    assert_eq!((summary.downloaded, summary.errors), (34, 26));
    let errs = errors(&events);
    assert!(
        errs.iter()
            .all(|(cc, m)| cc.starts_with('B')
                && m == &format!("cannot write {cc}.gif: disk says no")),
        "{errs:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 34);
}

#[test]
fn a_vanished_destination_makes_each_job_an_error_with_the_os_message() {
    let server = server();
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("dest");
    let sink = DirSink::new(&dest).unwrap();
    std::fs::remove_dir(&dest).unwrap();
    let (events, summary) = run(sink, jobs(&server.base, 20));
    assert_eq!((summary.downloaded, summary.errors), (0, 20));
    for (_, msg) in errors(&events) {
        assert!(msg.contains("No such file or directory"), "{msg}");
    }
    assert!(!dest.exists());
}

/// Mounts a 64 KiB tmpfs (root only); `None` where that is not allowed.
struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn mount() -> Option<SmallFs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ok.then_some(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).output();
    }
}

#[test]
fn a_full_filesystem_fails_the_writes_that_do_not_fit_and_leaves_no_temp_file() {
    let Some(fs) = SmallFs::mount() else {
        eprintln!("SKIPPED: cannot mount a small tmpfs here (needs root)");
        return;
    };
    let server = server();
    let (events, summary) = run(DirSink::new(fs.0.path()).unwrap(), jobs(&server.base, 100));
    assert_eq!(summary.downloaded + summary.errors, 100);
    assert!(summary.downloaded > 0 && summary.errors > 0, "{summary:?}");
    for (_, msg) in errors(&events) {
        assert!(msg.contains("No space left on device"), "{msg}");
    }
    assert!(
        hidden_files(fs.0.path()).is_empty(),
        "{:?}",
        hidden_files(fs.0.path())
    );
    for entry in std::fs::read_dir(fs.0.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let cc = name.trim_end_matches(".gif");
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            body_for(cc),
            "{name} is complete"
        );
    }
}
