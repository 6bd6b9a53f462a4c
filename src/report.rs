//! What a run tells the user: the book's reports on stdout (or JSON Lines), one line per job in
//! verbose mode, and the exit code.

use std::io::Write;
use std::time::Duration;

use flags_actors::{Event, Outcome, SharedStatus, Summary};

use crate::cli::Plan;

/// Exit codes.
pub const EXIT_OK: u8 = 0;
/// At least one job failed.
pub const EXIT_ERRORS: u8 = 1;
/// Usage error.
pub const EXIT_USAGE: u8 = 2;
/// Interrupted by a signal.
pub const EXIT_INTERRUPTED: u8 = 130;

pub(crate) fn out(line: impl std::fmt::Display) {
    // A closed stdout (flags | head) must not turn into a panic.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

pub(crate) fn initial_report(plan: &Plan, site: &str, pool: usize) {
    let codes = &plan.codes;
    let which = if codes.len() <= 10 {
        codes.join(", ")
    } else {
        format!("from {} to {}", codes[0], codes[codes.len() - 1])
    };
    out(format_args!("{} site: {}", plan.target.label, site));
    let plural = if codes.len() == 1 { "" } else { "s" };
    out(format_args!(
        "Searching for {} flag{plural}: {which}",
        codes.len()
    ));
    connections_line(pool);
}

pub(crate) fn connections_line(pool: usize) {
    if pool == 1 {
        out("1 connection will be used.");
    } else {
        out(format_args!("{pool} concurrent connections will be used."));
    }
}

/// The book's final report: what this run did, then (shared through Redis) what the other
/// workers did and how the whole crawl stands.
pub(crate) fn final_report(summary: &Summary, what: &str, not_attempted: u64, elapsed: Duration) {
    out("-".repeat(20));
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let ok = summary.downloaded;
    out(format_args!("{ok:3} {what}{} downloaded.", plural(ok)));
    if summary.not_found > 0 {
        out(format_args!("{:3} not found.", summary.not_found));
    }
    if summary.errors > 0 {
        out(format_args!(
            "{:3} error{}.",
            summary.errors,
            plural(summary.errors)
        ));
    }
    if summary.skipped > 0 {
        out(format_args!(
            "{:3} skipped (already downloaded).",
            summary.skipped
        ));
    }
    if not_attempted > 0 {
        out(format_args!(
            "{not_attempted:3} not attempted (interrupted)."
        ));
    }
    shared_lines(summary, what);
    out(format_args!("Elapsed time: {:.2}s", elapsed.as_secs_f64()));
}

/// In a shared run: the jobs the other workers did, and the whole crawl's state.
pub(crate) fn shared_lines(summary: &Summary, what: &str) {
    let Some(s) = &summary.shared else { return };
    let mine = summary.finished() + summary.blocked + summary.sitemaps;
    out(format_args!(
        "{:3} done by other workers.",
        s.done().saturating_sub(mine)
    ));
    let mut parts = vec![format!("{} {what}s downloaded", s.ok)];
    for (n, word) in [
        (s.not_found, "not found"),
        (s.redirected, "redirected"),
        (s.errors, "errors"),
        (s.skipped, "skipped"),
        (s.fetched, "fetched, not saved"),
        (s.blocked, "blocked by robots.txt"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    let state = if s.complete() {
        "complete".to_string()
    } else {
        format!(
            "NOT complete ({} queued, {} in flight)",
            s.queued, s.in_flight
        )
    };
    out(format_args!(
        "The shared crawl is {state}: {} jobs, {} ({} workers).",
        s.added,
        parts.join(", "),
        s.workers
    ));
}

/// The `shared` and `lost` fields of a `--json` summary.
pub(crate) fn shared_json(summary: &Summary, line: &mut serde_json::Value) {
    if let Some(s) = &summary.shared {
        let mine = summary.finished() + summary.blocked + summary.sitemaps;
        let mut shared = serde_json::json!({ "complete": s.complete() });
        shared_counts(&mut shared, s);
        shared["by_others"] = s.done().saturating_sub(mine).into();
        line["shared"] = shared;
    }
    if let Some(why) = &summary.lost {
        line["lost"] = why.clone().into();
    }
}

/// The exit code of a run: 130 when interrupted; 1 when its crawl's state was lost, when a job
/// failed, or (shared through Redis) when the shared crawl is not complete and clean, whoever
/// did its jobs; 0 otherwise.
pub(crate) fn exit_code(summary: &Summary) -> u8 {
    if summary.interrupted {
        return EXIT_INTERRUPTED;
    }
    if let Some(why) = &summary.lost {
        eprintln!("flags: {why}");
        return EXIT_ERRORS;
    }
    let clean = match &summary.shared {
        Some(s) => s.complete() && s.errors == 0,
        None => summary.errors == 0,
    };
    if clean {
        EXIT_OK
    } else {
        EXIT_ERRORS
    }
}

pub(crate) fn verbose_line(event: &Event) {
    let Event::Job(r) = event else { return };
    match &r.outcome {
        Outcome::Downloaded(_) => out(format_args!("{} OK", r.job.key)),
        Outcome::NotFound => out(format_args!("{} not found: {}", r.job.key, r.job.url)),
        Outcome::Skipped => out(format_args!("{} skipped: file exists", r.job.key)),
        Outcome::Redirected(to) => out(format_args!("{} redirected: {to}", r.job.key)),
        Outcome::Error(e) => out(format_args!("{} error: {e}", r.job.key)),
        other => out(format_args!("{} {}", r.job.key, other.kind())),
    }
}

pub(crate) fn json_line(event: &Event) {
    let Event::Job(r) = event else { return };
    out(job_json(r));
}

/// A job's `--json` line.
pub(crate) fn job_json(r: &flags_actors::JobReport) -> serde_json::Value {
    let (file, error, kind) = match &r.outcome {
        Outcome::Downloaded(f) => (Some(f.display().to_string()), None, None),
        Outcome::Error(e) => (None, Some(e.message.as_str()), Some(e.kind.as_str())),
        _ => (None, None, None),
    };
    serde_json::json!({
        "type": "job",
        "code": r.job.key,
        "url": r.job.url,
        "outcome": r.outcome.kind(),
        "status": r.status,
        "bytes": r.bytes,
        "ms": r.elapsed.as_millis() as u64,
        "attempts": r.attempts,
        "file": file,
        "error": error,
        "error_kind": kind,
    })
}

/// Adds a shared crawl's counts to a JSON object: the summary's `shared` object and `flags
/// status --json` say them alike.
pub fn shared_counts(object: &mut serde_json::Value, s: &SharedStatus) {
    let counts = [
        ("added", s.added),
        ("queued", s.queued),
        ("in_flight", s.in_flight),
        ("ok", s.ok),
        ("not_found", s.not_found),
        ("redirected", s.redirected),
        ("errors", s.errors),
        ("skipped", s.skipped),
        ("blocked", s.blocked),
        ("fetched", s.fetched),
        ("sitemaps", s.sitemaps),
        ("workers", s.workers),
    ];
    for (name, count) in counts {
        object[name] = count.into();
    }
}
