//! The link step of a crawl against a real browser: a fetched page in, the URLs a browser would
//! resolve out.
//!
//! The expected lists under `fixtures/links/*.expected` were produced once by headless Chromium
//! 156 (Debian's `chromium`), not by this code: `fixtures/links/make.py` writes each page in the
//! exact bytes a server would send (UTF-8; windows-1252 declared by the `Content-Type` header or
//! by a `<meta charset>`; UTF-16LE and UTF-16BE with a BOM), serves them on 127.0.0.1 as
//! `http://flags.test/dir/sub/NAME`, and records `.href` of every element of `document.links`
//! (every `<a href>` and `<area href>` in tree order), keeping the http(s) URLs that the WHATWG
//! URL parser (node's `URL`) accepts; it also checks every resolution of the UTF-8 and UTF-16
//! pages against node's `URL`. The tests need neither Chromium nor node.
//!
//! The pages hold ~90 link forms: character references (named, legacy without `;`, `&amp=` and
//! `&copy=` left alone in attributes, numeric with the C1 table and invalid code points),
//! whitespace and newlines inside `href`, upper-case tags and attributes, unquoted values, a
//! repeated `href`, `<base>` relative, twice, protocol-relative and `javascript:`, `..` and `%2F`
//! segments, IPv6, ports, IDNA hosts, non-ASCII paths and queries (percent-encoded in the page's
//! encoding), backslashes, `javascript:`/`mailto:`/`data:`/`tel:`/`ftp:` (dropped), and a URL of
//! 8 KB.

use std::io::Write;

use flags_actors::{html_links, Extract, Extracted, HtmlLinks, Page};

/// Where the fixtures were served when Chromium read them.
const DIR: &str = "http://flags.test/dir/sub/";

/// A page of `fixtures/links/`, the `Content-Type` it was served with and what Chromium found.
struct Fixture {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    expected: &'static str,
}

macro_rules! fixture {
    ($name:literal, $content_type:literal) => {
        Fixture {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("fixtures/links/", $name, ".html")),
            expected: include_str!(concat!("fixtures/links/", $name, ".expected")),
        }
    };
}

/// The pages and headers of `make.py`.
const FIXTURES: [Fixture; 8] = [
    fixture!("forms.utf8", "text/html; charset=utf-8"),
    fixture!("forms.latin1-header", "text/html; charset=iso-8859-1"),
    fixture!("forms.latin1-meta", "text/html"),
    fixture!("forms.utf16le", "text/html"),
    fixture!("forms.utf16be", "text/html"),
    fixture!("base", "text/html"),
    fixture!("base-protocol-relative", "text/html"),
    fixture!("base-javascript", "text/html"),
];

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Asserts `got == want`, naming the first difference (URLs can be 8 KB long).
fn assert_urls(what: &str, got: &[String], want: &[&str]) {
    let short = |s: &str| s.chars().take(120).collect::<String>();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(short(g), short(w), "{what}: URL {i} differs");
        assert_eq!(g, w, "{what}: URL {i} differs past 120 characters");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} URLs, Chromium has {}; extra or missing: {:?}",
        got.len(),
        want.len(),
        if got.len() > want.len() {
            got[want.len()..]
                .iter()
                .map(|s| short(s))
                .collect::<Vec<_>>()
        } else {
            want[got.len()..].iter().map(|s| short(s)).collect()
        }
    );
}

#[test]
fn every_link_form_resolves_as_chromium_resolves_it() {
    for f in &FIXTURES {
        let url = format!("{DIR}{}.html", f.name);
        let headers = headers(&[("content-type", f.content_type)]);
        let found = HtmlLinks.extract(&Page::new(&url, &headers, f.body));
        let want: Vec<&str> = f.expected.lines().collect();
        assert!(want.len() >= 2, "{}: expected list is empty", f.name);
        assert_urls(f.name, &found.links, &want);
        assert!(found.assets.is_empty() && !found.nofollow && !found.noindex);
    }
}

#[test]
fn without_headers_the_encoding_comes_from_the_bytes() {
    // BOM, `<meta charset>`, valid UTF-8, else windows-1252: the Latin-1 page whose charset was
    // in its header is not UTF-8, so it is read as windows-1252 all the same.
    for f in &FIXTURES {
        let url = format!("{DIR}{}.html", f.name);
        let want: Vec<&str> = f.expected.lines().collect();
        assert_urls(f.name, &html_links(&url, f.body), &want);
    }
}

#[test]
fn the_query_follows_the_page_encoding_and_the_path_is_always_utf8() {
    let url = "http://h.test/p.html";
    let latin1 = headers(&[("content-type", "text/html; charset=latin1")]);
    let found = HtmlLinks.extract(&Page::new(url, &latin1, b"<a href=\"/caf\xe9?q=\xe9\">"));
    assert_eq!(found.links, ["http://h.test/caf%C3%A9?q=%E9"]);
    let sjis = headers(&[("content-type", "text/html")]);
    let body = b"<meta charset=shift_jis><a href=\"/\x93\xfa?q=\x93\xfa\">";
    let found = HtmlLinks.extract(&Page::new(url, &sjis, body));
    assert_eq!(found.links, ["http://h.test/%E6%97%A5?q=%93%FA"]);
}

// --- Content codings ---

const CODED: &[u8] = include_bytes!("fixtures/links/coded.html");
const CODED_LINKS: [&str; 2] = [
    "http://flags.test/coded/one.html",
    "http://flags.test/dir/sub/two.html",
];

fn coded(codings: &[&str], body: &[u8]) -> Extracted {
    let mut pairs = vec![("content-type", "text/html")];
    pairs.extend(codings.iter().map(|c| ("content-encoding", *c)));
    let headers = headers(&pairs);
    HtmlLinks.extract(&Page::new(&format!("{DIR}coded.html"), &headers, body))
}

fn compress<W: Write>(
    mut encoder: W,
    finish: impl FnOnce(W) -> std::io::Result<Vec<u8>>,
) -> Vec<u8> {
    encoder.write_all(CODED).unwrap_or_else(|e| panic!("{e}"));
    finish(encoder).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn gzip_deflate_and_brotli_bodies_are_read_decoded() {
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    let gz = compress(GzEncoder::new(Vec::new(), Compression::default()), |e| {
        e.finish()
    });
    let zlib = compress(ZlibEncoder::new(Vec::new(), Compression::default()), |e| {
        e.finish()
    });
    let raw = compress(
        DeflateEncoder::new(Vec::new(), Compression::default()),
        |e| e.finish(),
    );
    let br: &[u8] = include_bytes!("fixtures/links/coded.html.br");
    let gz_br: &[u8] = include_bytes!("fixtures/links/coded.html.gz.br");
    let cases: [(&[&str], &[u8]); 9] = [
        (&[], CODED),
        (&["identity"], CODED),
        (&["gzip"], &gz),
        (&["x-gzip"], &gz),
        (&["deflate"], &zlib),
        (&["deflate"], &raw),
        (&["br"], br),
        (&["gzip, br"], gz_br),
        (&["gzip", "BR"], gz_br),
    ];
    for (codings, body) in cases {
        assert_eq!(coded(codings, body).links, CODED_LINKS, "{codings:?}");
    }
}

#[test]
fn unknown_or_wrong_codings_give_no_links() {
    assert!(coded(&["zstd"], CODED).links.is_empty());
    assert!(coded(&["compress"], CODED).links.is_empty());
    assert!(
        coded(&["gzip"], CODED).links.is_empty(),
        "plain HTML labelled gzip"
    );
}

#[test]
fn a_decompression_bomb_is_cut_at_the_bound() {
    // 100 KiB that inflate to 100 MiB: one link before the bomb, one after.
    let bomb: &[u8] = include_bytes!("fixtures/links/bomb.html.gz");
    let headers = headers(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
    let page = Page::new("http://h.test/", &headers, bomb);
    let small = HtmlLinks.max_decoded(1 << 20).extract(&page);
    assert_eq!(small.links, ["http://h.test/before-bomb"]);
    // The default bound (64 MiB) stops before the end too.
    assert_eq!(
        HtmlLinks.extract(&page).links,
        ["http://h.test/before-bomb"]
    );
    // A bound past the end reads it all.
    let all = HtmlLinks.max_decoded(101 << 20).extract(&page);
    assert_eq!(
        all.links,
        ["http://h.test/before-bomb", "http://h.test/after-bomb"]
    );
}

// --- nofollow and noindex ---

fn extract(extractor: &impl Extract, pairs: &[(&str, &str)], body: &str) -> Extracted {
    let headers = headers(pairs);
    extractor.extract(&Page::new("http://h.test/d/", &headers, body.as_bytes()))
}

#[test]
fn rel_nofollow_leaves_a_link_out_when_obeyed() {
    let body = r#"<a href=a rel="nofollow">a</a> <A REL="noopener NOFOLLOW" HREF=b>b</A>
        <area rel=nofollow href=c> <a href=d rel="nofollower">d</a> <a href=e>e</a>"#;
    let html = [("content-type", "text/html")];
    let all = extract(&HtmlLinks, &html, body);
    assert_eq!(all.links.len(), 5);
    assert!(
        !all.nofollow,
        "rel=nofollow is about one link, not the page"
    );
    let obeyed = extract(&HtmlLinks.obey_nofollow(true), &html, body);
    assert_eq!(obeyed.links, ["http://h.test/d/d", "http://h.test/d/e"]);
}

#[test]
fn meta_robots_and_meta_flags_nofollow_and_noindex() {
    let html = [("content-type", "text/html")];
    let obey = HtmlLinks.obey_nofollow(true);
    let body = r#"<meta name="robots" content="noindex, nofollow"><a href=a>a</a>"#;
    let found = extract(&obey, &html, body);
    assert!(found.links.is_empty() && found.nofollow && found.noindex);
    // Reported, not obeyed, by default.
    let found = extract(&HtmlLinks, &html, body);
    assert_eq!(found.links, ["http://h.test/d/a"]);
    assert!(found.nofollow && found.noindex);
    // Our product token, `none`, and names that are someone else's.
    let found = extract(&obey, &html, r#"<META NAME=Flags CONTENT=none><a href=a>"#);
    assert!(found.links.is_empty() && found.nofollow && found.noindex);
    let found = extract(
        &obey,
        &html,
        r#"<meta name=robots content=noindex><a href=a>"#,
    );
    assert!(found.links.len() == 1 && !found.nofollow && found.noindex);
    let found = extract(
        &obey,
        &html,
        r#"<meta name=googlebot content=nofollow><a href=a>"#,
    );
    assert!(found.links.len() == 1 && !found.nofollow && !found.noindex);
}

#[test]
fn x_robots_tag_headers_for_flags_or_for_everyone() {
    let obey = HtmlLinks.obey_nofollow(true);
    let body = "<a href=a>a</a>";
    let with = |tags: &[&str]| {
        let mut pairs = vec![("content-type", "text/html")];
        pairs.extend(tags.iter().map(|t| ("x-robots-tag", *t)));
        extract(&obey, &pairs, body)
    };
    let found = with(&["nofollow"]);
    assert!(found.links.is_empty() && found.nofollow && !found.noindex);
    let found = with(&["googlebot: nofollow, noindex"]);
    assert!(found.links.len() == 1 && !found.nofollow && !found.noindex);
    let found = with(&["googlebot: nofollow", "flags: noindex, nofollow"]);
    assert!(found.links.is_empty() && found.nofollow && found.noindex);
    let found = with(&["otherbot: none", "noindex"]);
    assert!(found.links.len() == 1 && !found.nofollow && found.noindex);
    let found = with(&["unavailable_after: 25 Jun 2010 15:00:00 PST, none"]);
    assert!(found.links.is_empty() && found.nofollow && found.noindex);
}

// --- Page requisites ---

#[test]
fn requisites_come_from_every_element_that_loads_one() {
    let body = r#"<!DOCTYPE html><html><head><base href="/assets/">
<link rel=stylesheet href=main.css><link rel="alternate stylesheet" href=alt.css>
<link rel=icon href=favicon.ico><link rel="shortcut icon" href=short.ico>
<link rel=apple-touch-icon href=touch.png><link rel=preload href=font.woff2 as=font>
<link rel=modulepreload href=mod.js><link rel=canonical href=/canonical><link rel=next href=next.html>
<script src=app.js></script><script>var notAUrl = "x.js"</script>
<style>@import "imported.css"; body { background: url(bg.png) }
@font-face { src: url('f.woff2') format('woff2') }</style>
</head><body style="background-image: url(&quot;body-bg.png&quot;)">
<img src=img.png srcset="img-2x.png 2x, img-3x.png 3x" alt=""> <img srcset="w-480.png 480w, w-800.png 800w" sizes="50vw">
<picture><source srcset="pic.avif" type="image/avif"><source srcset="pic.webp 1x, pic-2x.webp 2x"><img src=pic.jpg></picture>
<video src=movie.mp4 poster=poster.jpg><source src=movie.webm type=video/webm><track src=subs.vtt></video>
<audio src=sound.mp3></audio> <input type=IMAGE src=button.png> <input type=text src=not-an-image.png>
<embed src=plugin.swf> <object data=object.svg></object>
<a href=page.html>a link, not a requisite</a> <div style="background:url(div-bg.png)"></div>
<img src="data:image/png;base64,AAAA"> <img src="javascript:void(0)">
</body></html>"#;
    let found = extract(
        &HtmlLinks.requisites(true),
        &[("content-type", "text/html")],
        body,
    );
    let want: Vec<String> = [
        "main.css",
        "alt.css",
        "favicon.ico",
        "short.ico",
        "touch.png",
        "font.woff2",
        "mod.js",
        "app.js",
        "imported.css",
        "bg.png",
        "f.woff2",
        "body-bg.png",
        "img.png",
        "img-2x.png",
        "img-3x.png",
        "w-480.png",
        "w-800.png",
        "pic.avif",
        "pic.webp",
        "pic-2x.webp",
        "pic.jpg",
        "movie.mp4",
        "poster.jpg",
        "movie.webm",
        "subs.vtt",
        "sound.mp3",
        "button.png",
        "plugin.swf",
        "object.svg",
        "div-bg.png",
    ]
    .iter()
    .map(|a| format!("http://h.test/assets/{a}"))
    .collect();
    assert_eq!(found.assets, want);
    // srcset and the rest are requisites, not links.
    assert_eq!(found.links, ["http://h.test/assets/page.html"]);
    // Without asking, no requisites.
    let plain = extract(&HtmlLinks, &[("content-type", "text/html")], body);
    assert!(plain.assets.is_empty());
    assert_eq!(plain.links, found.links);
}

#[test]
fn stylesheets_give_their_urls_in_their_encoding() {
    let css: &[u8] = b"@charset \"iso-8859-1\";\n@import \"reset.css\";\n@import url(print.css) print;\n\
        .a { background: url(  'img/a.png'  ) }\n.b { background: url(img/b\\ c.png) }\n\
        .c{background:URL(\"img/\\\"q.png\")}\n/* url(comment.png) */\n.d { content: \"url(string.png)\" }\n\
        .e { background: url(/caf\xe9.png?q=\xe9) }\n@media print { .f { background: url(//cdn.test/f.png) } }\n";
    let extractor = HtmlLinks.requisites(true);
    assert!(extractor.wants(Some("text/css")) && !HtmlLinks.wants(Some("text/css")));
    let headers = headers(&[("content-type", "text/css")]);
    let found = extractor.extract(&Page::new("http://h.test/css/main.css", &headers, css));
    assert_eq!(
        found.assets,
        [
            "http://h.test/css/reset.css",
            "http://h.test/css/print.css",
            "http://h.test/css/img/a.png",
            "http://h.test/css/img/b%20c.png",
            "http://h.test/css/img/%22q.png",
            "http://h.test/caf%C3%A9.png?q=%E9",
            "http://cdn.test/f.png",
        ]
    );
    assert!(found.links.is_empty());
    // A stylesheet is no page of links for an extractor that was not asked for requisites.
    assert!(
        HtmlLinks.extract(&Page::new("http://h.test/x.css", &headers, css)) == Extracted::default()
    );
}

#[test]
fn extracted_constructors_still_work() {
    let links = vec!["http://h.test/".to_string()];
    assert_eq!(Extracted::links(links.clone()).links, links);
    let both = Extracted::new(links.clone(), vec!["{}".into()]);
    assert_eq!((both.links, both.records), (links, vec!["{}".to_string()]));
}
