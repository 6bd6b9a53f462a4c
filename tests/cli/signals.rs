//! Signals at awkward moments: SIGINT and SIGTERM mid-crawl, kill -9 then a re-run.

use std::path::Path;
use std::process::Stdio;
use std::thread::sleep;
use std::time::Duration;

use super::faults::assert_no_temp_files;
use super::{flags, names, send_signal, Serve};

/// Every file under a final name in `dir` is a complete flag (temp files, which a kill -9 may
/// leave, are not final names); returns how many there are.
fn assert_complete_flags(dir: &Path) -> usize {
    let files: Vec<String> = names(dir)
        .into_iter()
        .filter(|n| !(n.starts_with(".flags-") && n.ends_with(".part")))
        .collect();
    for name in &files {
        let cc = name
            .strip_suffix(".gif")
            .unwrap_or_else(|| panic!("unexpected file {name}"));
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            flags::server::flag_gif(cc),
            "{name} is incomplete"
        );
    }
    files.len()
}

/// Starts `flags -a` against a slow server, waits until some flags are saved, and sends `signal`.
fn interrupt(signal: i32, server: &Serve, dest: &Path) -> std::process::Output {
    let child = flags()
        .args(["-a", "-m", "10", "-s", &server.base, "-d"])
        .arg(dest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for progress rather than for a time: at least 10 files saved.
    for _ in 0..200 {
        if names(dest).iter().filter(|n| n.ends_with(".gif")).count() >= 10 {
            break;
        }
        sleep(Duration::from_millis(50));
    }
    send_signal(&child, signal);
    child.wait_with_output().unwrap()
}

fn check_interrupted(out: &std::process::Output, dest: &Path) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        text.contains("--------------------\n"),
        "partial report: {text}"
    );
    assert!(text.contains("not attempted (interrupted)."), "{text}");
    let saved = assert_complete_flags(dest);
    assert!((10..194).contains(&saved), "{saved} files");
    assert!(
        text.contains(&format!("{saved:3} flags downloaded.")),
        "{text}"
    );
    assert_no_temp_files(dest);
}

#[test]
fn sigint_mid_crawl_prints_the_partial_report_and_exits_130() {
    let server = Serve::start(&["--delay", "0.05..0.2"]);
    let dir = tempfile::tempdir().unwrap();
    let out = interrupt(libc::SIGINT, &server, dir.path());
    check_interrupted(&out, dir.path());
}

#[test]
fn sigterm_mid_crawl_is_handled_like_sigint() {
    let server = Serve::start(&["--delay", "0.05..0.2"]);
    let dir = tempfile::tempdir().unwrap();
    let out = interrupt(libc::SIGTERM, &server, dir.path());
    check_interrupted(&out, dir.path());
}

#[test]
fn kill_9_then_skip_existing_completes_the_folder() {
    let server = Serve::start(&["--delay", "0.05..0.2"]);
    let dir = tempfile::tempdir().unwrap();
    let out = interrupt(libc::SIGKILL, &server, dir.path());
    assert_eq!(out.status.code(), None, "killed by the signal");
    let before = assert_complete_flags(dir.path());
    assert!(before < 194);
    // What a kill during a write leaves behind; the next run must remove it.
    std::fs::write(dir.path().join(".flags-left.part"), b"half a flag").unwrap();

    let out = flags()
        .args([
            "-a",
            "-m",
            "50",
            "--skip-existing",
            "-s",
            &server.base,
            "-d",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{:3} flags downloaded.", 194 - before)),
        "{text}"
    );
    assert!(
        text.contains(&format!("{before:3} skipped (already downloaded).")),
        "{text}"
    );
    assert_eq!(assert_complete_flags(dir.path()), 194);
    assert_no_temp_files(dir.path());
}

#[test]
fn a_second_sigint_exits_at_once_without_waiting_for_the_grace_period() {
    // Every response stalls, so the first SIGINT has in-flight requests to wait for.
    let server = crate::common::raw::RawServer::start(|_, _stream| {
        sleep(Duration::from_secs(30));
    });
    let dir = tempfile::tempdir().unwrap();
    let mut child = flags()
        .args(["-a", "-m", "5", "--timeout", "60", "-s"])
        .arg(format!("{}/flags", server.base))
        .arg("-d")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the crawl is under way (its initial report is out), then signal twice.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    for _ in 0..3 {
        std::io::BufRead::read_line(&mut stdout, &mut text).unwrap();
    }
    sleep(Duration::from_millis(200));
    send_signal(&child, libc::SIGINT);
    // The second signal only after flags has said the first one was taken.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut said).unwrap();
    assert!(said.contains("signal again to quit now"), "{said}");
    send_signal(&child, libc::SIGINT);
    std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    // The partial report comes only after the grace period; the second signal did not wait.
    assert!(!text.contains("Elapsed time"), "{text}");
    assert_no_temp_files(dir.path());
}

/// The number before `what` in a report line such as " 12 not found.", or 0 without that line.
fn count(text: &str, what: &str) -> u64 {
    text.lines()
        .find(|l| {
            l.trim_start()
                .split_once(' ')
                .is_some_and(|(_, rest)| rest == what)
        })
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn sigint_as_soon_as_the_crawl_starts_still_adds_up() {
    // The built-in DELAY server (every response after 0.5 s) is started by flags itself.
    let dir = tempfile::tempdir().unwrap();
    let mut child = flags()
        .args(["-e", "-s", "DELAY", "-d"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut text).unwrap();
    send_signal(&child, libc::SIGINT);
    std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    let ok = count(&text, "flags downloaded.") + count(&text, "flag downloaded.");
    let nf = count(&text, "not found.");
    let errors = count(&text, "errors.") + count(&text, "error.");
    let not_attempted = count(&text, "not attempted (interrupted).");
    assert!(not_attempted > 0, "{text}");
    assert_eq!(ok + nf + errors + not_attempted, 676, "{text}");
    assert_eq!(assert_complete_flags(dir.path()) as u64, ok);
    assert_no_temp_files(dir.path());
}
