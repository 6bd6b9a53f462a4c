//! Safe file names for URLs: the name a page or file of a URL list is stored under.
//!
//! Names are a pure function of the URL, so they are deterministic whatever the order in which
//! downloads finish: `{host}[_{port}]/{path segments}`, each segment made safe. A URL with a
//! query, an empty last segment, or a segment that had to be changed to be safe gets a tag in its
//! last segment: 128 bits of the SHA-256 of the whole URL, in hex. That hash is the same on every
//! machine and every Rust release (so `--skip-existing` and `--resume` keep working after an
//! upgrade), and two URLs would share a tag with odds of about n² / 2^129: out of reach.

use std::path::PathBuf;

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
}
