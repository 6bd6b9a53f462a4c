mod embedded;
mod examples;
mod faults;
mod json;
mod metadata;
mod reports;
mod serve_dir;
mod usage;

use std::net::TcpListener;
use std::path::Path;

use std::process::Command;

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
