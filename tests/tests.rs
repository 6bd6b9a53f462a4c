//! Integration tests of the `flags` binary: every file runs the real binary against real servers on
//! 127.0.0.1 (the built-in one, `flags serve`, or an actix-web server in the test).

#[path = "../actors/tests/common/mod.rs"]
mod common;

mod cli;
