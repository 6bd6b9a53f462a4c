//! Each example runs and prints what its header promises. `cargo test` builds the examples next to
//! the test binaries (`target/<profile>/examples/`); this runs them from there.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/tests-HASH → target/<profile>/examples/NAME
    let path: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .expect("target layout");
    assert!(
        path.is_file(),
        "{} was not built (run the tests with cargo test)",
        path.display()
    );
    let out = Command::new(&path).output().expect("run the example");
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn embed_draws_its_own_output_and_the_summary() {
    let text = example("embed");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with('[')).count(),
        12,
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("ok         br/br.gif (")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("not found  zz/zz.gif")),
        "{text}"
    );
    assert!(
        text.contains("done: 8 downloaded, 4 not found, 0 errors in "),
        "{text}"
    );
}

#[test]
fn custom_sink_prints_a_sha256_per_body() {
    let text = example("custom_sink");
    let digests: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("sha256 ").nth(1))
        .collect();
    assert_eq!(digests.len(), 5, "{text}");
    assert!(digests
        .iter()
        .all(|d| d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit())));
    let expected = flags::server::flag_gif("BR");
    let line = text
        .lines()
        .find(|l| l.starts_with("BR.gif"))
        .expect("a BR line");
    assert!(
        line.contains(&format!(" {} bytes ", expected.len())),
        "{line}"
    );
    assert!(
        text.contains("5 bodies kept in memory (3 not found)"),
        "{text}"
    );
}

#[test]
fn pool_size_gets_faster_with_a_larger_pool() {
    let text = example("pool_size");
    let secs: Vec<f64> = text
        .lines()
        .map(|l| {
            assert!(l.ends_with("for 40 jobs (26 ok, 14 not found)"), "{l}");
            l.split(": ")
                .nth(1)
                .and_then(|r| r.split('s').next())
                .and_then(|n| n.parse().ok())
                .expect("seconds")
        })
        .collect();
    assert_eq!(secs.len(), 3, "{text}");
    // 40 jobs of 100 ms each: pool 1 needs at least 4 s of server time; pool 10 at least 0.4 s.
    // Those are lower bounds set by the server's delay, not timing assertions on our speed.
    assert!(
        secs[0] >= 4.0 && secs[1] >= 0.4 && secs[1] < secs[0] && secs[2] <= secs[1],
        "{text}"
    );
}

#[test]
fn crawl_items_prints_a_record_per_page_from_its_own_extractor() {
    let text = example("crawl_items");
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    // Depth 2 of a tree of fan-out 4 (1 + 4 + 16 pages), home's /docs/, /about and /docs/guide,
    // /countries/ and its 194 country pages, each with its title.
    assert_eq!(records.len(), 219, "{text}");
    assert!(records.iter().all(|r| r["depth"].as_u64().unwrap() <= 2));
    assert!(records.iter().any(|r| r["title"] == "Page 16"), "{text}");
    // Its step followed no link with a query string.
    assert!(records
        .iter()
        .all(|r| !r["url"].as_str().unwrap().contains('?')));
    assert!(
        text.contains("done: 219 pages stored, 1 not found, 1 redirected; 223 URLs discovered"),
        "{text}"
    );
}
