mod beyond;
mod crawl;
mod embedded;
mod examples;
mod faults;
mod files;
mod hostile;
mod https;
mod input;
mod json;
mod metadata;
mod real_servers;
mod redis;
mod reports;
mod serve_dir;
mod shared_ends;
mod signals;
mod third_party;
mod usage;
mod warc;

use std::net::TcpListener;
use std::path::Path;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary, with every label pointed at a closed port so each crawl starts its own built-in
/// server and never meets another test's (or a developer's) server on 8000-8002.
pub fn flags() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("flags"));
    for label in ["LOCAL", "DELAY", "ERROR"] {
        cmd.env(
            format!("FLAGS_{label}_URL"),
            format!("http://127.0.0.1:{}/flags", closed_port()),
        );
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The names in a folder, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// stdout of a finished command, as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `flags serve` child process, killed when dropped.
pub struct Serve {
    child: Child,
    pub base: String,
}

impl Serve {
    pub fn start(extra: &[&str]) -> Serve {
        let mut child = flags()
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("flags serve");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .unwrap();
        // "Serving flags at http://127.0.0.1:PORT/flags (Ctrl-C to stop)"
        let base = line.split_whitespace().nth(3).expect("the URL").to_string();
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `signal` to a child process.
pub fn send_signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) with a pid we own.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0, "kill failed");
}
