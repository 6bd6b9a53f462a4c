//! Sitemaps as sites really write them, and as an attacker might: namespaces or none, entities,
//! CDATA, whitespace, gzip whatever the name, plain text, feeds, and the protocol's limits against
//! bodies far past them (a gzip bomb is read only up to 50 MiB).
//!
//! Run: `cargo test -p flags-actors --test sitemap`.

use std::io::{Read, Write};

use flags_actors::sitemap::{
    parse, parse_with, robots_sitemaps, Limits, Sitemap, SitemapError, SitemapKind, MAX_BYTES,
    MAX_URLS,
};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn urls(map: &Sitemap) -> Vec<&str> {
    map.locs.iter().map(String::as_str).collect()
}

const URLSET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>
      https://example.com/?a=1&amp;b=2
    </loc>
    <lastmod>2024-01-01</lastmod>
    <image:image><image:loc>https://example.com/photo.jpg</image:loc></image:image>
  </url>
  <url><loc><![CDATA[https://example.com/cdata?x=1&y=2]]></loc></url>
  <url><loc>https://example.com/caf&#xE9;&#47;x</loc></url>
  <url><loc></loc></url>
  <url><loc/></url>
</urlset>"#;

#[test]
fn a_urlset_with_namespaces_entities_and_whitespace() {
    let map = parse(URLSET.as_bytes()).unwrap();
    assert_eq!(map.kind, SitemapKind::Urls);
    assert_eq!(
        urls(&map),
        [
            "https://example.com/?a=1&b=2",
            "https://example.com/cdata?x=1&y=2",
            "https://example.com/café/x",
        ]
    );
    assert!(!map.truncated);
}

#[test]
fn an_index_with_a_prefix_or_no_namespace() {
    let prefixed = r#"<sm:sitemapindex xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
        <sm:sitemap><sm:loc>https://example.com/s1.xml.gz</sm:loc></sm:sitemap>
        <sm:sitemap><sm:loc> https://example.com/s2.xml </sm:loc><sm:lastmod>x</sm:lastmod></sm:sitemap>
    </sm:sitemapindex>"#;
    let map = parse(prefixed.as_bytes()).unwrap();
    assert_eq!(map.kind, SitemapKind::Index);
    assert_eq!(
        urls(&map),
        [
            "https://example.com/s1.xml.gz",
            "https://example.com/s2.xml"
        ]
    );
    let bare = "\u{feff}<sitemapindex><sitemap><loc>http://a/s.xml</loc></sitemap></sitemapindex>";
    let map = parse(bare.as_bytes()).unwrap();
    assert_eq!(
        (map.kind, urls(&map)),
        (SitemapKind::Index, vec!["http://a/s.xml"])
    );
}

#[test]
fn gzip_is_known_by_its_magic_bytes() {
    let map = parse(&gzip(URLSET.as_bytes())[..]).unwrap();
    assert_eq!(map.locs.len(), 3);
    let text = parse(&gzip(b"https://a.example/1\nhttps://a.example/2\n")[..]).unwrap();
    assert_eq!(urls(&text), ["https://a.example/1", "https://a.example/2"]);
}

#[test]
fn plain_text_sitemaps() {
    let body = "\u{feff}https://example.com/a\r\n\n  https://example.com/b  \nnot a url\nHTTP://EXAMPLE.COM/C\n";
    let map = parse(body.as_bytes()).unwrap();
    assert_eq!(map.kind, SitemapKind::Urls);
    assert_eq!(
        urls(&map),
        [
            "https://example.com/a",
            "https://example.com/b",
            "HTTP://EXAMPLE.COM/C"
        ]
    );
}

#[test]
fn feeds_are_sitemaps_too() {
    let rss = r#"<rss version="2.0"><channel><link>https://example.com/</link>
        <item><title>a</title><link>https://example.com/a</link></item>
        <item><link>https://example.com/b</link></item></channel></rss>"#;
    assert_eq!(
        urls(&parse(rss.as_bytes()).unwrap()),
        ["https://example.com/a", "https://example.com/b"]
    );
    let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><link href="https://example.com/"/>
        <entry><link rel="self" href="https://example.com/self"/><link href="https://example.com/p1"/></entry>
        <entry><link rel="alternate" href="https://example.com/p2"></link></entry></feed>"#;
    assert_eq!(
        urls(&parse(atom.as_bytes()).unwrap()),
        ["https://example.com/p1", "https://example.com/p2"]
    );
}

#[test]
fn what_is_not_a_sitemap_says_so() {
    let html = "<!DOCTYPE html><html><body><a href='/x'>x</a></body></html>";
    assert!(matches!(
        parse(html.as_bytes()),
        Err(SitemapError::NotASitemap(root)) if root == "html"
    ));
    assert!(matches!(parse(&b"<"[..]), Err(SitemapError::Xml(_))));
    // Not XML: read as text, which lists nothing.
    assert!(parse(&b"\x00\x01binary"[..]).unwrap().locs.is_empty());
}

#[test]
fn more_than_50000_urls_are_cut_at_50000() {
    let mut xml = String::from("<urlset>");
    for i in 0..MAX_URLS + 10 {
        xml.push_str(&format!("<url><loc>https://example.com/{i}</loc></url>"));
    }
    xml.push_str("</urlset>");
    let map = parse(xml.as_bytes()).unwrap();
    assert_eq!(map.locs.len(), MAX_URLS);
    assert!(map.truncated);
    assert_eq!(
        map.locs[MAX_URLS - 1],
        format!("https://example.com/{}", MAX_URLS - 1)
    );

    // Exactly at the limit is not cut.
    let text: String = (0..MAX_URLS)
        .map(|i| format!("https://e.com/{i}\n"))
        .collect();
    let map = parse(text.as_bytes()).unwrap();
    assert_eq!((map.locs.len(), map.truncated), (MAX_URLS, false));
}

/// Counts the compressed bytes the parser reads.
struct Counting<R>(R, u64);

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
}

#[test]
fn a_gzip_bomb_is_read_only_up_to_the_byte_limit() {
    // 1 GiB of sitemap entries (with no loc, so the URL limit never stops it) in 7 MiB: one
    // member of 1 MiB of entries, 1024 times over (a gzip stream may have many members).
    let entry = b"<url><lastmod>2024-01-01</lastmod></url>".repeat((1 << 20) / 40);
    let member = gzip(&entry);
    let mut bomb = gzip(b"<urlset><url><loc>https://example.com/first</loc></url>");
    for _ in 0..1024 {
        bomb.extend_from_slice(&member);
    }
    bomb.extend_from_slice(&gzip(b"</urlset>"));
    assert!(bomb.len() < 8 << 20, "{}", bomb.len());

    let mut input = Counting(&bomb[..], 0);
    let map = parse(&mut input).unwrap();
    assert_eq!(urls(&map), ["https://example.com/first"]);
    assert!(map.truncated, "cut at the limit");
    // About 50 MiB of the 1 GiB read (give or take flate2's 32 KiB read-ahead, 5 members):
    // the reading stopped there.
    let members_read = input.1 as f64 / member.len() as f64;
    let limit_in_members = MAX_BYTES as f64 / entry.len() as f64;
    assert!(
        members_read < limit_in_members + 8.0,
        "read {members_read:.0} members, the limit is {limit_in_members:.0}"
    );
}

#[test]
fn the_byte_limit_holds_for_plain_bodies_too() {
    let limits = Limits {
        max_urls: MAX_URLS,
        max_bytes: 100,
    };
    let text: String = (0..20).map(|i| format!("https://e.com/{i:02}\n")).collect();
    let map = parse_with(text.as_bytes(), limits).unwrap();
    // 100 bytes hold five whole 18-byte lines and the start of a sixth, which is dropped.
    assert_eq!(map.locs.len(), 5);
    assert!(map.truncated);
}

#[test]
fn a_torn_gzip_keeps_what_came_before() {
    let mut xml = String::from("<urlset>");
    for i in 0..2000 {
        xml.push_str(&format!("<url><loc>https://example.com/{i}</loc></url>"));
    }
    let gz = gzip(xml.as_bytes());
    let map = parse(&gz[..gz.len() / 2]).unwrap();
    assert!(map.truncated);
    assert!(
        !map.locs.is_empty() && map.locs.len() < 2000,
        "{}",
        map.locs.len()
    );
    assert_eq!(map.locs[0], "https://example.com/0");
}

#[test]
fn robots_txt_sitemap_lines() {
    let txt = b"# hi\nUser-agent: *\nDisallow: /private\n\nSitemap: https://example.com/sitemap.xml\nsitemap: https://example.com/news.xml # news\nSitemap: https://example.com/sitemap.xml\nSitemap:\n";
    let ours = robots_sitemaps(txt);
    assert_eq!(
        ours,
        [
            "https://example.com/sitemap.xml",
            "https://example.com/news.xml"
        ]
    );
    // texting_robots finds the same lines, but keeps repeats and empty values.
    let theirs = texting_robots::Robot::new("flags", txt).unwrap().sitemaps;
    assert_eq!(
        theirs,
        [
            "https://example.com/sitemap.xml",
            "https://example.com/news.xml",
            "https://example.com/sitemap.xml",
            "",
        ]
    );
}
