//! The book's reports, against the built-in server.

use super::{flags, names, stdout};

fn crawl(args: &[&str]) -> (String, Vec<String>, i32) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let out = flags().args(args).arg("-d").arg(&dest).output().unwrap();
    (stdout(&out), names(&dest), out.status.code().unwrap_or(-1))
}

#[test]
fn every_code_gives_the_books_report_and_194_files() {
    let (text, files, code) = crawl(&["-e"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(code, 0, "{text}");
    assert!(
        lines[0].starts_with("LOCAL site: http://127.0.0.1:"),
        "{text}"
    );
    assert_eq!(lines[1], "Searching for 676 flags: from AA to ZZ");
    assert_eq!(lines[2], "100 concurrent connections will be used.");
    assert_eq!(lines[3], "--------------------");
    assert_eq!(lines[4], "194 flags downloaded.");
    assert_eq!(lines[5], "482 not found.");
    assert!(
        lines[6].starts_with("Elapsed time: ") && lines[6].ends_with('s'),
        "{text}"
    );
    assert_eq!(lines.len(), 7, "stdout holds only the reports: {text}");
    assert_eq!(files.len(), 194);
    assert!(
        files.iter().all(|f| f.len() == 6 && f.ends_with(".gif")),
        "{files:?}"
    );
}

#[test]
fn all_gives_194() {
    let (text, files, code) = crawl(&["-a"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("Searching for 194 flags: from AD to ZW"),
        "{text}"
    );
    assert!(text.contains("194 flags downloaded."), "{text}");
    assert!(!text.contains("not found"), "{text}");
    assert_eq!(files.len(), 194);
}

#[test]
fn no_codes_gives_the_top_20() {
    let (text, files, _) = crawl(&[]);
    assert!(
        text.contains("Searching for 20 flags: from BD to VN"),
        "{text}"
    );
    assert!(
        text.contains("20 concurrent connections will be used."),
        "{text}"
    );
    let expected = [
        "BD", "BR", "CD", "CN", "DE", "EG", "ET", "FR", "ID", "IN", "IR", "JP", "MX", "NG", "PH",
        "PK", "RU", "TR", "US", "VN",
    ];
    let want: Vec<String> = expected.iter().map(|cc| format!("{cc}.gif")).collect();
    assert_eq!(files, want);
}

#[test]
fn one_letter_is_26_codes() {
    let (text, files, _) = crawl(&["B"]);
    assert!(
        text.contains("Searching for 26 flags: from BA to BZ"),
        "{text}"
    );
    assert_eq!(files.len(), 17, "B has 17 countries: {files:?}");
}

#[test]
fn limit_keeps_the_first_n() {
    let (text, files, _) = crawl(&["-e", "-l", "5"]);
    assert!(
        text.contains("Searching for 5 flags: AA, AB, AC, AD, AE"),
        "{text}"
    );
    assert!(text.contains("  2 flags downloaded."), "{text}");
    assert!(text.contains("  3 not found."), "{text}");
    assert_eq!(files, vec!["AD.gif", "AE.gif"]);
}

#[test]
fn three_codes_one_connection() {
    let (text, files, _) = crawl(&["ba", "Bb", "BC", "-m", "1"]);
    assert!(
        text.contains("Searching for 3 flags: BA, BB, BC\n"),
        "{text}"
    );
    assert!(text.contains("1 connection will be used.\n"), "{text}");
    assert!(text.contains("  1 not found."), "{text}");
    assert_eq!(files, vec!["BA.gif", "BB.gif"]);
}

#[test]
fn verbose_prints_one_book_line_per_job() {
    let (text, _, _) = crawl(&["-v", "BA", "BB", "BC"]);
    assert!(text.contains("\nBA OK\n"), "{text}");
    assert!(text.contains("\nBB OK\n"), "{text}");
    let bc = text
        .lines()
        .find(|l| l.starts_with("BC "))
        .expect("a BC line");
    assert!(
        bc.starts_with("BC not found: http://127.0.0.1:") && bc.ends_with("/flags/bc/bc.gif"),
        "{bc}"
    );
    assert_eq!(text.lines().count(), 3 + 3 + 4, "{text}");
}

#[test]
fn errors_are_counted_and_exit_1() {
    // The ERROR profile answers 418 a quarter of the time.
    let (text, files, code) = crawl(&["-a", "-s", "error", "-v"]);
    let errors = text
        .lines()
        .filter(|l| l.contains(" error: HTTP error 418"))
        .count();
    assert!(errors > 10, "{text}");
    assert!(text.contains(&format!("{errors:3} errors.")), "{text}");
    assert_eq!(files.len(), 194 - errors);
    assert_eq!(code, 1);
}
