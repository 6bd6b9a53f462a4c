//! Every page saved once, under a name that never collides: a crawl of a site whose URLs press
//! on every naming problem (`/x`, `/x/`, `/x/index.html`, `/x/y`, `/a/b`, `/a//b`, `/A` and `/a`,
//! queries, a 300-character path, `..` and `%2F`, a file where a folder is needed, two URLs that
//! want one name), then a resumed run and a `--skip-existing` run; compressed pages read for their
//! links; and the built-in site saved as a browser can open it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::crawl::{files, json_lines, summary};
use super::hostile::{status, Answer, Scripted};
use super::{flags, stderr, stdout};

/// The body a path is served with: HTML naming the path (so every file says whose it is), with
/// links for the ones that have some.
fn body(path: &str, links: &[&str]) -> Vec<u8> {
    let links: String = links
        .iter()
        .map(|l| format!("<a href=\"{l}\">{l}</a>\n"))
        .collect();
    format!("<!DOCTYPE html><title>{path}</title><p>page {path}</p>\n{links}").into_bytes()
}

fn html(path: &str, links: &[&str]) -> Answer {
    Answer::Plain(
        200,
        vec![("content-type", "text/html; charset=utf-8".into())],
        body(path, links),
    )
}

/// The links of the home page: every naming problem at once.
fn tricky_links() -> Vec<String> {
    let long = "l".repeat(300);
    vec![
        "/x".into(),
        "/x/".into(),
        "/x/index.html".into(),
        "/x/y".into(),
        "/a/b".into(),
        "/a//b".into(),
        "/A".into(),
        "/a".into(),
        "/s?q=1".into(),
        "/s?q=2".into(),
        format!("/{long}"),
        "/c/../d".into(),
        "/e%2Ff".into(),
        "/h".into(),
        "/h.html".into(),
        "/bin".into(),
        "/bin/z".into(),
    ]
}

/// What the tricky site serves at `path` (its query included).
fn served(path: &str) -> Vec<u8> {
    let links = tricky_links();
    let links: Vec<&str> = links.iter().map(String::as_str).collect();
    if path == "/" {
        body("/", &links)
    } else {
        body(path, &[])
    }
}

fn tricky_answer(path: &str) -> Answer {
    match path {
        "/robots.txt" => status(404),
        // Not HTML: named as it is, so a page below it needs a folder where it stands.
        "/bin" => Answer::Plain(
            200,
            vec![("content-type", "application/octet-stream".into())],
            served(path),
        ),
        _ => Answer::Plain(
            200,
            vec![("content-type", "text/html; charset=utf-8".into())],
            served(path),
        ),
    }
}

fn tricky_server() -> Scripted {
    Scripted::start(|path, _| tricky_answer(path))
}

/// The index of a crawl: each URL with its line.
fn index(dest: &Path) -> BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(dest.join(flags::site_crawl::INDEX)).unwrap();
    let mut by_url = BTreeMap::new();
    for line in text.lines() {
        // urlkey timestamp {json}
        let json = line.splitn(3, ' ').nth(2).expect("a CDXJ line");
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let url = v["url"].as_str().unwrap().to_string();
        assert!(
            by_url.insert(url.clone(), v).is_none(),
            "{url} listed twice"
        );
    }
    by_url
}

/// Every page that answered 200 is a file holding exactly what its URL served; the index names
/// it; no two URLs share a file.
fn assert_each_page_is_its_own_file(dest: &Path, base: &str) -> BTreeMap<String, String> {
    let index = index(dest);
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (url, line) in &index {
        if line["status"] != "200" {
            continue;
        }
        let file = line["file"]
            .as_str()
            .unwrap_or_else(|| panic!("{url}: no file"));
        assert!(
            owner.insert(file.to_string(), url.clone()).is_none(),
            "{file} is two URLs' file"
        );
        let path = url.strip_prefix(base).unwrap();
        let path = if path.is_empty() { "/" } else { path };
        let stored = std::fs::read(dest.join(file)).unwrap();
        assert_eq!(
            stored,
            served(path),
            "{file} holds {url}'s body, byte for byte"
        );
    }
    assert_eq!(
        files(dest).len(),
        owner.len(),
        "a file for each page, nothing else: {:?}",
        files(dest)
    );
    owner
}

#[test]
fn every_page_is_saved_once_under_its_own_name_and_runs_after_keep_them() {
    let server = tricky_server();
    let base = server.base.clone();
    let dest = tempfile::tempdir().unwrap();
    let crawl = |extra: &[&str]| {
        flags()
            .args([
                "crawl",
                &format!("{base}/"),
                "-m",
                "1",
                "--per-host",
                "1",
                "--json",
                "-d",
            ])
            .arg(dest.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = crawl(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = assert_each_page_is_its_own_file(dest.path(), &base);
    // The names a browser can open: a directory URL is its folder's index.html, an HTML page
    // without an extension gets one, and so on.
    let host = first
        .keys()
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for name in [
        "index.html",
        "x.html",
        "x/index.html",
        "x/y.html",
        "a/b.html",
        "A.html",
        "a.html",
        "s@q=1.html",
        "s@q=2.html",
        "d.html",
        "e%2Ff.html",
    ] {
        let file = format!("{host}/{name}");
        assert!(
            first.contains_key(&file),
            "{file} missing: {:?}",
            first.keys()
        );
    }
    assert_eq!(
        first.keys().filter(|f| f.contains("/_collisions/")).count(),
        2,
        "/h.html beside /h, and /bin/z below the file /bin: {first:?}"
    );
    let stamps = |d: &Path| -> BTreeMap<String, std::time::SystemTime> {
        files(d)
            .into_iter()
            .map(|f| {
                let t = std::fs::metadata(d.join(&f)).unwrap().modified().unwrap();
                (f, t)
            })
            .collect()
    };
    let before = stamps(dest.path());

    // A re-run that skips what is stored requests no page again and changes no file.
    let asked = server.hits().len();
    let out = crawl(&["--skip-existing"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&json_lines(&out)).clone();
    assert_eq!(s["skipped"].as_u64(), Some(first.len() as u64), "{s}");
    let again: Vec<String> = server.hits()[asked..]
        .iter()
        .map(|h| h.path.clone())
        .collect();
    assert!(again.iter().all(|p| super::crawl::is_meta(p)), "{again:?}");
    assert_eq!(stamps(dest.path()), before, "no file touched");
    assert_eq!(assert_each_page_is_its_own_file(dest.path(), &base), first);
}

#[test]
fn ctrl_c_then_resume_leaves_the_same_files_and_overwrites_none() {
    // A slow site, one page at a time, so the crawl is cut halfway.
    let slow = Scripted::start(|path, _| {
        std::thread::sleep(std::time::Duration::from_millis(40));
        tricky_answer(path)
    });
    let base = slow.base.clone();
    let dest = tempfile::tempdir().unwrap();
    let child = flags()
        .args([
            "crawl",
            &format!("{base}/"),
            "-m",
            "1",
            "--per-host",
            "1",
            "-d",
        ])
        .arg(dest.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while slow.hits().len() < 8 {
        assert!(
            std::time::Instant::now() < deadline,
            "the crawl did not get going"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    super::send_signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stdout(&out));
    let out = flags()
        .args([
            "crawl",
            &format!("{base}/"),
            "-m",
            "1",
            "--per-host",
            "1",
            "--resume",
            "-d",
        ])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let resumed = assert_each_page_is_its_own_file(dest.path(), &base);

    // The same files as a crawl that was never stopped.
    let server = tricky_server();
    let whole = tempfile::tempdir().unwrap();
    let out = flags()
        .args([
            "crawl",
            &format!("{}/", server.base),
            "-m",
            "1",
            "--per-host",
            "1",
            "-d",
        ])
        .arg(whole.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let whole = assert_each_page_is_its_own_file(whole.path(), &server.base);
    // Tags hash the whole URL, port included: the two servers' ports differ, so do the tags.
    let strip = |m: &BTreeMap<String, String>, base: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = m
            .iter()
            .map(|(f, u)| {
                let f = f.split_once('/').map_or(f.as_str(), |(_, rest)| rest);
                (mask_tags(f), u.strip_prefix(base).unwrap_or(u).to_string())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(strip(&resumed, &base), strip(&whole, &server.base));
}

#[test]
fn compressed_pages_are_read_for_their_links_and_stored_as_sent() {
    let gzipped = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"<!DOCTYPE html><title>gz</title><a href=\"/br/\">br</a>")
            .unwrap();
        gz.finish().unwrap()
    };
    let brotli = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("actors/tests/fixtures/links/coded.html.br"),
    )
    .unwrap();
    let (gz_body, br_body) = (gzipped.clone(), brotli.clone());
    let server = Scripted::start(move |path, _| match path {
        "/robots.txt" => status(404),
        "/" => Answer::Plain(
            200,
            vec![
                ("content-type", "text/html".into()),
                ("content-encoding", "gzip".into()),
            ],
            gz_body.clone(),
        ),
        "/br/" => Answer::Plain(
            200,
            vec![
                ("content-type", "text/html".into()),
                ("content-encoding", "br".into()),
            ],
            br_body.clone(),
        ),
        _ => html(path, &[]),
    });
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &format!("{}/", server.base), "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let paths: Vec<String> = server.hits().into_iter().map(|h| h.path).collect();
    // The gzip page's link, then the brotli page's links (one absolute, one relative).
    for p in ["/br/", "/coded/one.html", "/br/two.html"] {
        assert!(paths.contains(&p.to_string()), "{p}: {paths:?}");
    }
    let host = files(dest.path())[0].split('/').next().unwrap().to_string();
    assert_eq!(
        std::fs::read(dest.path().join(&host).join("index.html")).unwrap(),
        gzipped,
        "stored as sent"
    );
    assert_eq!(
        std::fs::read(dest.path().join(&host).join("br/index.html")).unwrap(),
        brotli
    );
}

#[test]
fn the_built_in_site_is_saved_as_a_browser_can_open_it() {
    let server = super::Serve::start(&["--site", "60"]);
    let site = server.base.trim_end_matches("/flags").to_string();
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &format!("{site}/"), "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = files(dest.path());
    let host = all[0].split('/').next().unwrap().to_string();
    for name in [
        "index.html",
        "docs/index.html",
        "about.html",
        "docs/guide.html",
        "p/1.html",
    ] {
        let file = format!("{host}/{name}");
        assert!(all.contains(&file), "{file}: {all:?}");
    }
    let home = std::fs::read_to_string(dest.path().join(&host).join("index.html")).unwrap();
    assert!(home.contains("Page 0"), "{home}");
}

/// `name` with every tag (32 hex digits) written as `TAG`.
fn mask_tags(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(*b))
            .count();
        if run == 32 {
            out.push_str("TAG");
            i += 32;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

#[test]
fn a_start_url_may_have_a_query_and_its_fragment_is_dropped() {
    let server = tricky_server();
    let url = format!("{}/s?q=1#results", server.base);
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &url, "--max-depth", "0", "--json", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let asked: Vec<String> = server
        .hits()
        .into_iter()
        .map(|h| h.path)
        .filter(|p| !super::crawl::is_meta(p))
        .collect();
    assert_eq!(asked, ["/s?q=1"]);
    assert_eq!(summary(&json_lines(&out))["downloaded"], 1);
}

#[test]
fn pages_at_the_depth_limit_are_not_read_for_links() {
    let server = super::Serve::start(&["--site", "100"]);
    let site = server.base.trim_end_matches("/flags").to_string();
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args([
            "crawl",
            &format!("{site}/"),
            "--max-depth",
            "1",
            "--json",
            "-d",
        ])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pages: Vec<serde_json::Value> = json_lines(&out)
        .into_iter()
        .filter(|l| l["type"] == "job" && l["outcome"] == "ok")
        .collect();
    assert!(pages.iter().any(|p| p["depth"] == 1));
    for p in &pages {
        let read = p["links"].as_u64().unwrap() > 0;
        assert_eq!(read, p["depth"] == 0, "{p}");
    }
}
