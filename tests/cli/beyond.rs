//! What crawlers of record do: sitemaps (a gzipped sitemap behind a sitemap index named in
//! robots.txt), page requisites saved by type (the book's job, the 194 flags, as a crawl of the
//! built-in site's country pages), and nofollow in its three forms.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::crawl::{files, json_lines, summary};
use super::hostile::{page, status, Answer, Scripted};
use super::{flags, stderr};

fn xml(body: String) -> Answer {
    Answer::Plain(
        200,
        vec![("content-type", "application/xml".into())],
        body.into_bytes(),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A site whose pages `/hidden/1` and `/hidden/2` no link reaches: only a gzipped sitemap,
/// listed in a sitemap index that robots.txt names, lists them (beside a disallowed page and one
/// on another host).
fn sitemap_site() -> Scripted {
    let base = Arc::new(Mutex::new(String::new()));
    let here = Arc::clone(&base);
    let server = Scripted::start(move |path, _| {
        let base = here.lock().unwrap().clone();
        match path {
            "/robots.txt" => Answer::Plain(
                200,
                Vec::new(),
                format!("User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap_index.xml\n")
                    .into_bytes(),
            ),
            "/" => page(&["/a"]),
            "/sitemap_index.xml" => xml(format!(
                "<?xml version=\"1.0\"?>\n<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                 <sitemap><loc>{base}/maps/pages.xml.gz</loc></sitemap></sitemapindex>"
            )),
            "/maps/pages.xml.gz" => Answer::Plain(
                200,
                vec![("content-type", "application/gzip".into())],
                gzip(
                    format!(
                        "<?xml version=\"1.0\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                         <url><loc>{base}/hidden/1</loc></url>\
                         <url><loc> {base}/hidden/2?a=1&amp;b=2 </loc></url>\
                         <url><loc>{base}/private/3</loc></url>\
                         <url><loc>http://elsewhere.invalid/x</loc></url></urlset>"
                    )
                    .as_bytes(),
                ),
            ),
            "/sitemap.xml" => status(404),
            _ => page(&[]),
        }
    });
    *base.lock().unwrap() = server.base.clone();
    server
}

#[test]
fn sitemaps_lead_to_pages_no_link_reaches_within_scope_and_robots() {
    let server = sitemap_site();
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &format!("{}/", server.base), "--json", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let paths: Vec<String> = server.hits().into_iter().map(|h| h.path).collect();
    for p in ["/hidden/1", "/hidden/2?a=1&b=2", "/a", "/"] {
        assert_eq!(
            paths.iter().filter(|x| *x == p).count(),
            1,
            "{p}: {paths:?}"
        );
    }
    for p in ["/sitemap.xml", "/sitemap_index.xml", "/maps/pages.xml.gz"] {
        assert_eq!(
            paths.iter().filter(|x| *x == p).count(),
            1,
            "{p}: {paths:?}"
        );
    }
    assert!(
        !paths.iter().any(|p| p.starts_with("/private/")),
        "{paths:?}"
    );
    let s = summary(&json_lines(&out)).clone();
    // Pages: /, /a and the two hidden ones; the three sitemaps are not pages.
    assert_eq!(
        (s["downloaded"].as_u64(), s["sitemaps"].as_u64()),
        (Some(4), Some(3)),
        "{s}"
    );
    assert_eq!(s["blocked"], 1, "{s}");
    let hidden = json_lines(&out)
        .into_iter()
        .find(|l| l["url"].as_str().is_some_and(|u| u.ends_with("/hidden/1")))
        .unwrap();
    assert_eq!(hidden["depth"], 1, "{hidden}");

    // Without sitemaps, only what links reach.
    let server = sitemap_site();
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &format!("{}/", server.base), "--no-sitemaps", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let paths: Vec<String> = server.hits().into_iter().map(|h| h.path).collect();
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("hidden") && !p.contains("sitemap")),
        "{paths:?}"
    );
}

#[test]
fn the_194_flags_are_collected_as_the_requisites_of_the_country_pages() {
    let server = super::Serve::start(&["--site", "30"]);
    let site = server.base.trim_end_matches("/flags").to_string();
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args([
            "crawl",
            &format!("{site}/"),
            "--requisites",
            "--accept-type",
            "image/gif",
        ])
        .args(["-m", "16", "--per-host", "16", "--json", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let saved = files(dest.path());
    assert_eq!(saved.len(), 194, "{saved:?}");
    for (cc, _) in flags::countries::COUNTRIES {
        let lc = cc.to_lowercase();
        let file = saved
            .iter()
            .find(|f| f.ends_with(&format!("/flags/{lc}/{lc}.gif")))
            .unwrap_or_else(|| panic!("{cc} missing"));
        assert_eq!(
            std::fs::read(dest.path().join(file)).unwrap(),
            flags::server::flag_gif(cc),
            "{cc}: byte for byte the flag server's"
        );
    }
    assert!(saved.iter().all(|f| !f.ends_with(".html")), "no HTML saved");
    let s = summary(&json_lines(&out)).clone();
    assert_eq!(s["downloaded"], 194, "{s}");
    assert!(
        s["fetched"].as_u64().unwrap() > 194,
        "the pages were visited: {s}"
    );
}

#[test]
fn nofollow_is_obeyed_in_its_three_forms_unless_robots_are_ignored() {
    let server = Scripted::start(|path, _| match path {
        "/robots.txt" => status(404),
        "/" => Answer::Plain(
            200,
            vec![("content-type", "text/html".into())],
            b"<a href=/f>f</a> <a rel=\"external nofollow\" href=/nf>nf</a> \
              <a href=/meta>meta</a> <a href=/hdr>hdr</a>"
                .to_vec(),
        ),
        "/meta" => Answer::Plain(
            200,
            vec![("content-type", "text/html".into())],
            b"<meta name=\"robots\" content=\"noindex, NOFOLLOW\"><a href=/m1>m1</a>".to_vec(),
        ),
        "/hdr" => Answer::Plain(
            200,
            vec![
                ("content-type", "text/html".into()),
                ("x-robots-tag", "nofollow".into()),
            ],
            b"<a href=/h1>h1</a>".to_vec(),
        ),
        _ => page(&[]),
    });
    let crawl = |extra: &[&str]| {
        let dest = tempfile::tempdir().unwrap();
        let out = flags()
            .args(["crawl", &format!("{}/", server.base), "-d"])
            .arg(dest.path())
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    crawl(&[]);
    let paths: Vec<String> = server.hits().into_iter().map(|h| h.path).collect();
    for p in ["/f", "/meta", "/hdr"] {
        assert!(paths.contains(&p.to_string()), "{p}: {paths:?}");
    }
    for p in ["/nf", "/m1", "/h1"] {
        assert!(!paths.contains(&p.to_string()), "{p} followed: {paths:?}");
    }
    let before = server.hits().len();
    crawl(&["--ignore-robots"]);
    let paths: Vec<String> = server.hits()[before..]
        .iter()
        .map(|h| h.path.clone())
        .collect();
    for p in ["/nf", "/m1", "/h1"] {
        assert!(
            paths.contains(&p.to_string()),
            "{p} not followed: {paths:?}"
        );
    }
}
