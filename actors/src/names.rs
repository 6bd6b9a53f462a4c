//! File names for URLs: where a crawled page ([`page_file`]) or a URL of a list
//! ([`file_for_url`]) is stored.
//!
//! Names are a pure function of the URL (and, for a page, of whether it is HTML), so they are the
//! same whatever the order in which downloads finish, and in every run. Tags are 128 bits of the
//! SHA-256 of the whole URL, in hex: the same on every machine and every Rust release, and two
//! URLs would share one with odds of about n² / 2^129, out of reach.
//!
//! A crawled page is named as wget's `--adjust-extension` names it, made one-to-one:
//! `{host}[_{port}]/{segments}`, where a directory URL (`/docs/`) is `docs/index.html` and an
//! HTML page without an `.html`/`.htm` extension gets `.html`; a query goes before the extension
//! (`search?q=os` → `search@q=os.html`). Each segment is percent-decoded when decoding it is
//! lossless and gives a name safe on disk (`a%20b` → `a b`), and kept as written otherwise
//! (`a%2Fb`, `%7Ejoe`): a decoded name never holds a `%XX` escape and a kept one always does, so
//! no two segments give one name. An empty segment (`/a//b`), an explicit `index.html` (the
//! name of its directory's page) and a name over 200 bytes (cut to 150) get a tag. What may still
//! collide (`/x` served as HTML beside `/x.html`, or a file where a folder is needed) is settled
//! when the page is stored: the second URL goes to [`collided_file`].

use std::path::{Path, PathBuf};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// The first 128 bits of the URL's SHA-256, as 32 hex digits: stable everywhere, forever.
pub fn url_tag(url: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(url.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file name segment that cannot escape or hide: control characters and separators dropped,
/// leading dots removed, at most 100 bytes. `None` when nothing is left.
pub fn safe_segment(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
            continue;
        }
        if out.len() + c.len_utf8() > 100 {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_start_matches('.');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// The relative path a URL is saved under, or `None` for something that is not an http(s) URL.
pub fn file_for_url(raw: &str) -> Option<PathBuf> {
    let url = url::Url::parse(raw).ok()?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return None;
    }
    let host = safe_segment(&url.host_str()?.replace(':', "_"))?;
    let mut path = PathBuf::from(match url.port() {
        Some(port) => format!("{host}_{port}"),
        None => host,
    });
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let mut changed = url.query().is_some();
    let (last, dirs) = segments.split_last().unwrap_or((&"", &[]));
    for dir in dirs {
        let decoded = percent_decode(dir);
        match safe_segment(&decoded) {
            Some(s) => {
                changed |= s != decoded;
                path.push(s);
            }
            None => changed |= !dir.is_empty(),
        }
    }
    let decoded = percent_decode(last);
    let mut name = match safe_segment(&decoded) {
        Some(s) => {
            changed |= s != decoded;
            s
        }
        None => {
            changed = true;
            "index".to_string()
        }
    };
    if changed {
        let tag = format!("-{}", url_tag(raw));
        match name.rfind('.') {
            Some(dot) if dot > 0 => name.insert_str(dot, &tag),
            _ => name.push_str(&tag),
        }
    }
    path.push(name);
    Some(path)
}

/// The longest name of a page's file or folder, in bytes; a longer one is cut to
/// [`CUT_NAME`] bytes and tagged (file systems allow 255).
const MAX_NAME: usize = 200;
const CUT_NAME: usize = 150;

/// What the WHATWG URL parser percent-encodes in a path segment: deciding whether decoding a
/// segment is lossless means encoding it back as the parser would.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The folder of a URL's host: `{host}[_{port}]`.
fn host_dir(url: &url::Url) -> Option<String> {
    let host = safe_segment(&url.host_str()?.replace(':', "_"))?;
    Some(match url.port() {
        Some(port) => format!("{host}_{port}"),
        None => host,
    })
}

/// A path segment as a file or folder name: decoded when that is lossless and safe, else as
/// written (see the module doc).
fn segment_name(raw: &str) -> String {
    if let Ok(decoded) = percent_decode_str(raw).decode_utf8() {
        let safe = !decoded.is_empty()
            && !decoded
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\');
        if safe && utf8_percent_encode(&decoded, PATH_SEGMENT).to_string() == raw {
            return decoded.into_owned();
        }
    }
    raw.to_string()
}

/// `stem` + `-tag` + `ext`.
fn tagged(stem: &str, tag: &str, ext: &str) -> String {
    format!("{stem}-{tag}{ext}")
}

/// The file a crawled page is stored under, relative to the destination: see the module doc.
/// `html` says whether the page is HTML (`text/html`, `application/xhtml+xml`). `None` for
/// anything that is not an http(s) URL with a host.
pub fn page_file(raw: &str, html: bool) -> Option<PathBuf> {
    let url = url::Url::parse(raw).ok()?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return None;
    }
    let mut path = PathBuf::from(host_dir(&url)?);
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let (last, dirs) = segments.split_last().unwrap_or((&"", &[]));
    let mut tag = false;
    let mut prefix = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        prefix.push_str(&format!(":{port}"));
    }
    for dir in dirs {
        prefix.push('/');
        prefix.push_str(dir);
        if dir.is_empty() {
            tag = true;
            continue;
        }
        let name = segment_name(dir);
        if name.len() <= MAX_NAME {
            path.push(name);
        } else {
            // Every URL below a long folder shares its cut name: tagged by the folder's URL.
            path.push(tagged(cut_to(&name, CUT_NAME), &url_tag(&prefix), ""));
        }
    }
    // The stem and the extension of the last name; a directory URL is its folder's index.html.
    let (mut stem, mut ext) = if last.is_empty() {
        ("index".to_string(), ".html".to_string())
    } else {
        let name = segment_name(last);
        tag |= name == "index.html";
        let is_html_ext = has_html_ext(&name);
        match name.rfind('.') {
            // An HTML page keeps its own extension in its stem (`page.php` → `page.php.html`).
            Some(dot) if dot > 0 && name.len() - dot <= 10 && (!html || is_html_ext) => {
                (name[..dot].to_string(), name[dot..].to_string())
            }
            _ => (name, String::new()),
        }
    };
    if let Some(query) = url.query() {
        // '%' and '/' escaped, nothing decoded: one query, one name.
        stem.push('@');
        stem.push_str(&query.replace('%', "%25").replace('/', "%2F"));
    }
    if html && ext.is_empty() {
        ext = ".html".into();
    }
    let name = if tag || stem.len() + ext.len() > MAX_NAME {
        tagged(cut_to(&stem, CUT_NAME), &url_tag(raw), &ext)
    } else {
        format!("{stem}{ext}")
    };
    path.push(name);
    Some(path)
}

/// `.html` or `.htm`, in any case.
fn has_html_ext(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".html") || lower.ends_with(".htm")
}

/// `s` cut to at most `n` bytes on a character boundary.
fn cut_to(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Where a page goes when its own name is taken by another URL's file, or the folders refuse it
/// (a file stands where a folder is needed): `{host}[_{port}]/_collisions/{tag}-{name}`, one flat
/// folder, so nothing there can stand in anything's way.
pub fn collided_file(raw: &str, file: &Path) -> PathBuf {
    let host = file
        .components()
        .next()
        .map(|c| PathBuf::from(c.as_os_str()))
        .unwrap_or_else(|| PathBuf::from("invalid"));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    host.join("_collisions")
        .join(format!("{}-{}", url_tag(raw), cut_to(&name, CUT_NAME)))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::is_safe_relative;

    #[test]
    fn names_follow_the_url() {
        assert_eq!(
            file_for_url("http://127.0.0.1:8080/flags/br/br.gif").unwrap(),
            PathBuf::from("127.0.0.1_8080/flags/br/br.gif")
        );
        assert_eq!(
            file_for_url("https://example.com/a%20b.txt").unwrap(),
            PathBuf::from("example.com/a b.txt")
        );
        assert!(file_for_url("ftp://example.com/x").is_none());
        assert!(file_for_url("not a url").is_none());
    }

    #[test]
    fn distinct_urls_get_distinct_safe_names() {
        let urls = [
            "http://h/get?id=1",
            "http://h/get?id=2",
            "http://h/get",
            "http://h/",
            "http://h",
            "http://h/dir/",
            "http://h/%2e%2e/%2e%2e/etc/passwd",
            "http://h/..%2f..%2fetc",
            "http://h/a%2Fb",
            "http://h/a/b",
            "http://h/.hidden",
            "http://h/hidden",
            "http://[::1]:81/x",
        ];
        let names: Vec<PathBuf> = urls.iter().map(|u| file_for_url(u).unwrap()).collect();
        for (u, n) in urls.iter().zip(&names) {
            assert!(is_safe_relative(n), "{u} -> {n:?}");
        }
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(
            names,
            urls.iter()
                .map(|u| file_for_url(u).unwrap())
                .collect::<Vec<_>>(),
            "deterministic"
        );
    }

    #[test]
    fn tags_are_stable_across_machines_and_releases() {
        // Pinned (it is `sha256sum` of the URL, cut to 32 digits): a changed tag would make
        // --skip-existing fetch everything again.
        assert_eq!(
            file_for_url("http://h/get?id=1").unwrap(),
            PathBuf::from("h/get-53622624a8ce0172c7af666fedb0d53c")
        );
    }

    fn page(url: &str, html: bool) -> String {
        page_file(url, html).unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn pages_are_named_as_wget_adjust_extension_names_them() {
        assert_eq!(page("http://h/", true), "h/index.html");
        assert_eq!(page("http://h:8080/docs/", true), "h_8080/docs/index.html");
        assert_eq!(page("http://h/about", true), "h/about.html");
        assert_eq!(page("http://h/about", false), "h/about");
        assert_eq!(page("http://h/a.html", true), "h/a.html");
        assert_eq!(page("http://h/A.HTM", true), "h/A.HTM");
        assert_eq!(page("http://h/page.php", true), "h/page.php.html");
        assert_eq!(page("http://h/page.php?id=3", true), "h/page.php@id=3.html");
        assert_eq!(page("http://h/s?q=os", true), "h/s@q=os.html");
        assert_eq!(page("http://h/?q=os", true), "h/index@q=os.html");
        assert_eq!(page("http://h/x.zip?v=2", false), "h/x@v=2.zip");
        assert_eq!(page("http://h/flags/br.gif", false), "h/flags/br.gif");
        assert_eq!(page("http://h/a%20b", true), "h/a b.html");
        assert_eq!(page("http://h/a%2Fb", true), "h/a%2Fb.html");
        assert_eq!(page("http://h/%7Ejoe/", true), "h/%7Ejoe/index.html");
        assert_eq!(page("http://h/~joe/", true), "h/~joe/index.html");
        assert_eq!(page("http://h/caf%C3%A9", true), "h/café.html");
        assert_eq!(page("http://h/q?a/b=%2F", true), "h/q@a%2Fb=%252F.html");
    }

    #[test]
    fn every_url_of_a_crawl_gets_its_own_name() {
        let long = "x".repeat(300);
        let urls = [
            "http://h/x".to_string(),
            "http://h/x/".into(),
            "http://h/x/index.html".into(),
            "http://h/x/y".into(),
            "http://h/a/b".into(),
            "http://h/a//b".into(),
            "http://h/A".into(),
            "http://h/a".into(),
            "http://h/s?q=1".into(),
            "http://h/s?q=2".into(),
            "http://h/s".into(),
            format!("http://h/{long}"),
            format!("http://h/{long}y"),
            format!("http://h/{long}/a"),
            format!("http://h/{long}y/a"),
            "http://h/a%2Fb".into(),
            "http://h/a%252Fb".into(),
            "http://h/%7E".into(),
            "http://h/~".into(),
            "http://h/100%".into(),
            "http://h/100%25".into(),
            "http://h/%00".into(),
            "http://h/.hidden".into(),
        ];
        let names: Vec<PathBuf> = urls.iter().map(|u| page_file(u, true).unwrap()).collect();
        for (u, n) in urls.iter().zip(&names) {
            assert!(is_safe_relative(n), "{u} -> {n:?}");
            for c in n.components() {
                assert!(c.as_os_str().len() <= 255, "{u} -> {n:?}");
            }
        }
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:#?}");
        assert_eq!(
            page("http://h/x/index.html", true),
            format!("h/x/index-{}.html", url_tag("http://h/x/index.html"))
        );
        let collided = collided_file("http://h/x", Path::new("h/x.html"));
        assert_eq!(
            collided,
            PathBuf::from(format!("h/_collisions/{}-x.html", url_tag("http://h/x")))
        );
    }
}
