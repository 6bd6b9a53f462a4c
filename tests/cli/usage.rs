//! Every usage error: one line on stderr, exit 2, nothing written.

use super::{flags, names, stderr};

#[test]
fn usage_errors_say_one_line_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let file = file.to_str().unwrap().to_string();
    let under_file = format!("{file}/sub");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["X1"], "each CC argument must be A to Z or AA to ZZ."),
        (vec!["ABC"], "each CC argument must be A to Z or AA to ZZ."),
        (
            vec!["B", "é"],
            "each CC argument must be A to Z or AA to ZZ.",
        ),
        (vec!["-m", "0"], "--max-req CONCURRENT must be >= 1"),
        (vec!["--max_req", "-5"], "--max-req CONCURRENT must be >= 1"),
        (vec!["-m", "many"], "invalid value 'many'"),
        (vec!["-l", "0"], "--limit N must be >= 1"),
        (vec!["-l", "x"], "invalid value 'x'"),
        (vec!["-s", "NOWHERE"], "--server LABEL must be one of"),
        (vec!["-s", "ftp://example.com/flags"], "only http and https"),
        (vec!["-s", "http://"], "--server: not a valid URL"),
        (vec!["-s", "http://[::1/flags"], "--server: not a valid URL"),
        (vec!["-s", "file:///etc"], "only http and https"),
        (vec!["-d", &file], "exists and is not a folder"),
        (vec!["-d", &under_file], "Not a directory"),
        (vec!["-d", ""], "a value is required for '--dest <DIR>'"),
        (
            vec!["--timeout", "0"],
            "--timeout SECS must be greater than 0",
        ),
        (
            vec!["--timeout", "nan"],
            "--timeout SECS must be greater than 0",
        ),
        (vec!["--max-size", "0"], "--max-size BYTES must be >= 1"),
        (vec!["-H", "NoColon"], "a header is 'Name: value'"),
        (vec!["-H", "Bad Name: x"], "a header is 'Name: value'"),
        (vec!["-H", ": empty name"], "a header is 'Name: value'"),
        (vec!["--retry-status", "404"], "--retry-status 404"),
        (vec!["--retry-status", "200"], "--retry-status 200"),
        (vec!["--retries", "-1"], "unexpected argument '-1'"),
        (vec!["--bogus"], "unexpected argument '--bogus'"),
        (
            vec!["-i", "/nonexistent/urls.txt"],
            "No such file or directory",
        ),
        (vec!["-i", "/"], "is a folder, not a file"),
        (vec!["-i", &file, "-a"], "--input cannot be combined with"),
        (vec!["-i", &file, "BR"], "--input cannot be combined with"),
        (
            vec!["-i", &file, "--metadata"],
            "--metadata works with flags only",
        ),
        (vec!["-i", &file, "-m", "30000"], "open files"),
        (vec!["--cacert", &file], "--cacert"),
        (
            vec!["--cacert", "/nonexistent.pem"],
            "No such file or directory",
        ),
        (vec!["serve", "--delay", "x"], "--delay: not a number"),
        (
            vec!["serve", "--error-rate", "2"],
            "--error-rate P must be between 0 and 1",
        ),
        (vec!["serve", "--dir", &file], "not a directory"),
    ];
    let cwd = tempfile::tempdir().unwrap();
    for (args, expected) in &cases {
        let out = flags().current_dir(cwd.path()).args(args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with("*** Usage error: "), "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: expected {expected:?} in {err:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
        assert!(
            names(cwd.path()).is_empty(),
            "{args:?} wrote {:?}",
            names(cwd.path())
        );
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"x",
        "a DEST that is a file is untouched"
    );
}

#[test]
fn help_documents_options_and_exit_codes() {
    let out = flags().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "--max-req",
        "--server",
        "--dest",
        "--metadata",
        "--every",
        "Exit codes:",
        "130",
    ] {
        assert!(text.contains(needle), "help lacks {needle}");
    }
}
