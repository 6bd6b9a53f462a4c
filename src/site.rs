//! The built-in test site (`flags serve --site N`): N linked HTML pages, generated and
//! deterministic, with everything a crawler meets on a real site.
//!
//! Layout: the home page `/` and pages `/p/{i}.html` for `i` in `1..N`. Page `i` links to its
//! children `4i+1 ..= 4i+4` (a tree, so page `i` is about log4(i) links from home), written in
//! turn as a relative link, an absolute path with a fragment, and a `../p/` path. Besides:
//! every page links home and back to its parent (with a fragment); every 7th page has a link that
//! is a 404, every 10th one a link under `/private/` (disallowed by robots.txt, served if asked),
//! every 11th one a link to itself with a query string (a distinct URL, the same page), every 13th
//! one links off-site, every 50th one a link through `/go/{j}`, a 301 to page `j`. Home and every
//! 17th page declare a `<base href>` that their relative links need. Home also links to a
//! directory URL, `/docs/`, and to pages without an extension, `/about` and `/docs/guide`: a
//! saved site names them `docs/index.html`, `about.html` and `docs/guide.html`. And home links
//! to `/countries/`, which links a page per country, `/countries/{cc}.html`, showing its flag with
//! `<img src="/flags/{cc}/{cc}.gif">` (the flag server's images, served beside the site): a crawl
//! with `--requisites --accept-type image/gif` collects the 194 flags.
//!
//! The site knows its own graph ([`Site::reachable`]), so tests can compare a crawl with what a
//! breadth-first crawler must visit, without parsing HTML themselves.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// The robots.txt of the site.
pub const ROBOTS_TXT: &str = "User-agent: *\nDisallow: /private/\n";

/// The pages beside the numbered ones: a directory URL and pages without an extension, with
/// their links (as written; each resolves to a path of this site).
const EXTRA: [(&str, &[(&str, &str)]); 3] = [
    ("/docs/", &[("guide", "/docs/guide"), ("/about", "/about")]),
    (
        "/docs/guide",
        &[("./", "/docs/"), ("../p/1.html", "/p/1.html")],
    ),
    ("/about", &[("/docs/", "/docs/"), ("/", "/")]),
];

/// The site's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTML page.
    Page(String),
    /// robots.txt.
    Robots,
    /// A 301 to this path.
    Redirect(String),
    /// 404.
    NotFound,
}

/// One link of a page: how it is written, and what it resolves to (a path with its query, or
/// `None` off-site).
#[derive(Debug, Clone)]
pub struct Link {
    /// The `href` as written in the page.
    pub href: String,
    /// The path (and query) it resolves to on this site; `None` for an off-site link.
    pub to: Option<String>,
}

/// A generated site of `n` pages.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    n: u32,
}

impl Site {
    /// A site of `n` pages (at least 1: the home page).
    pub fn new(n: u32) -> Self {
        Site { n: n.max(1) }
    }

    /// The number of pages.
    pub fn pages(&self) -> u32 {
        self.n
    }

    /// The path of page `i`.
    pub fn path(i: u32) -> String {
        if i == 0 {
            "/".to_string()
        } else {
            format!("/p/{i}.html")
        }
    }

    /// The page id a path names, if it is a page of this site.
    fn page_id(&self, path: &str) -> Option<u32> {
        if path == "/" || path == "/index.html" {
            return Some(0);
        }
        let id: u32 = path
            .strip_prefix("/p/")?
            .strip_suffix(".html")?
            .parse()
            .ok()?;
        (id >= 1 && id < self.n && path == Site::path(id)).then_some(id)
    }

    /// Whether page `i` declares a `<base href>`.
    fn has_base(i: u32) -> bool {
        i.is_multiple_of(17)
    }

    /// The links of page `i`, in page order.
    pub fn links(&self, i: u32) -> Vec<Link> {
        let mut links = Vec::new();
        let local = |href: String, to: String| Link { href, to: Some(to) };
        for c in (4 * i + 1)..=(4 * i + 4) {
            if c >= self.n {
                break;
            }
            let to = Site::path(c);
            let href = match (i, Site::has_base(i), c % 3) {
                // Home's base is /p/; a 17th page's base is /: relative links need it.
                (0, _, _) => format!("{c}.html"),
                (_, true, _) => format!("p/{c}.html"),
                (_, _, 0) => format!("{c}.html"),
                (_, _, 1) => format!("/p/{c}.html#s{c}"),
                _ => format!("../p/{c}.html"),
            };
            links.push(local(href, to));
        }
        links.push(local("/".into(), "/".into()));
        if i > 0 {
            let parent = (i - 1) / 4;
            links.push(local(
                format!("{}#top", Site::path(parent)),
                Site::path(parent),
            ));
        }
        if i.is_multiple_of(7) {
            links.push(local(
                format!("/missing/{i}.html"),
                format!("/missing/{i}.html"),
            ));
        }
        if i.is_multiple_of(10) {
            links.push(local(
                format!("/private/{i}.html"),
                format!("/private/{i}.html"),
            ));
        }
        if i.is_multiple_of(11) && i > 0 {
            let to = format!("{}?from={}", Site::path(i), i);
            links.push(local(to.clone(), to));
        }
        if i.is_multiple_of(13) {
            links.push(Link {
                href: format!("http://offsite.invalid/page/{i}"),
                to: None,
            });
            links.push(Link {
                href: "https://example.com/".into(),
                to: None,
            });
        }
        if i.is_multiple_of(50) && i + 1 < self.n {
            let j = i + 1;
            links.push(local(format!("/go/{j}"), format!("/go/{j}")));
        }
        if i == 0 {
            links.push(local("/docs/".into(), "/docs/".into()));
            links.push(local("/about".into(), "/about".into()));
            links.push(local("/countries/".into(), "/countries/".into()));
        }
        links
    }

    /// The country pages: `/countries/` (links to each) and `/countries/{cc}.html` (its flag).
    fn country_page(path: &str) -> Option<String> {
        let rest = path.strip_prefix("/countries/")?;
        if rest.is_empty() {
            let mut html = String::from(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Countries</title>\
                 </head>\n<body><h1>Countries</h1>\n<ul>\n",
            );
            for (cc, name) in crate::countries::COUNTRIES {
                let lc = cc.to_lowercase();
                let _ = writeln!(html, "<li><a href=\"{lc}.html\">{name}</a></li>");
            }
            html.push_str("</ul>\n</body></html>\n");
            return Some(html);
        }
        let lc = rest.strip_suffix(".html")?;
        let (cc, name) = crate::countries::COUNTRIES.iter().find(|(cc, _)| {
            cc.eq_ignore_ascii_case(lc) && lc.chars().all(|c| c.is_ascii_lowercase())
        })?;
        let _ = cc;
        Some(format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{name}</title></head>\n\
             <body><h1>{name}</h1>\n<p><img src=\"/flags/{lc}/{lc}.gif\" alt=\"The flag of {name}\"></p>\n\
             <p><a href=\"./\">All countries</a></p>\n</body></html>\n"
        ))
    }

    /// The links of a country page (its images are requisites, not links).
    fn country_links(path: &str) -> Option<Vec<Link>> {
        Site::country_page(path)?;
        let rest = path.strip_prefix("/countries/")?;
        let local = |href: String, to: String| Link { href, to: Some(to) };
        if rest.is_empty() {
            Some(
                crate::countries::COUNTRIES
                    .iter()
                    .map(|(cc, _)| {
                        let lc = cc.to_lowercase();
                        local(format!("{lc}.html"), format!("/countries/{lc}.html"))
                    })
                    .collect(),
            )
        } else {
            Some(vec![local("./".into(), "/countries/".into())])
        }
    }

    /// The links of a page beside the numbered ones (`/docs/`, `/docs/guide`, `/about`).
    fn extra_links(path: &str) -> Option<Vec<Link>> {
        let (_, links) = EXTRA.iter().find(|(p, _)| *p == path)?;
        Some(
            links
                .iter()
                .map(|(href, to)| Link {
                    href: (*href).to_string(),
                    to: Some((*to).to_string()),
                })
                .collect(),
        )
    }

    /// The HTML of a page beside the numbered ones.
    fn extra_html(path: &str, links: &[Link]) -> String {
        let mut html = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{path}</title></head>\n\
             <body><h1>{path}</h1>\n<ul>\n"
        );
        for link in links {
            let _ = writeln!(html, "<li><a href=\"{}\">{}</a></li>", link.href, link.href);
        }
        html.push_str("</ul>\n</body></html>\n");
        html
    }

    /// The HTML of page `i`.
    pub fn html(&self, i: u32) -> String {
        let mut html = String::with_capacity(1024);
        let base = match i {
            0 => "<base href=\"/p/\">",
            _ if Site::has_base(i) => "<base href=\"/\">",
            _ => "",
        };
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">{base}<title>Page {i}</title></head>\n\
             <body><h1 id=\"top\">Page {i}</h1>\n<p>Generated test page {i} of {}.</p>\n<ul>\n",
            self.n
        );
        for link in self.links(i) {
            let _ = writeln!(html, "<li><a href=\"{}\">{}</a></li>", link.href, link.href);
        }
        html.push_str("</ul>\n</body></html>\n");
        html
    }

    /// The answer to `GET path?query`.
    pub fn answer(&self, path: &str, query: Option<&str>) -> Answer {
        if path == "/robots.txt" {
            return Answer::Robots;
        }
        if let Some(j) = path
            .strip_prefix("/go/")
            .and_then(|j| j.parse::<u32>().ok())
        {
            if j >= 1 && j < self.n {
                return Answer::Redirect(Site::path(j));
            }
        }
        if let Some(rest) = path.strip_prefix("/private/") {
            // Served to whoever ignores robots.txt, so a crawler that does is caught in the logs.
            return Answer::Page(format!("<html><body>private {rest}</body></html>\n"));
        }
        let _ = query; // a query names the same page: a distinct URL with the same content
        if let Some(links) = Site::extra_links(path) {
            return Answer::Page(Site::extra_html(path, &links));
        }
        if let Some(html) = Site::country_page(path) {
            return Answer::Page(html);
        }
        match self.page_id(path) {
            Some(i) => Answer::Page(self.html(i)),
            None => Answer::NotFound,
        }
    }

    /// Every URL (path and query) a breadth-first crawler that obeys robots.txt requests from
    /// `/`, with its depth, within `max_depth`: pages, their 404 links, redirects and their
    /// targets (a redirect's target keeps its depth).
    pub fn reachable(&self, max_depth: Option<u32>) -> BTreeMap<String, u32> {
        let mut depth: BTreeMap<String, u32> = BTreeMap::new();
        let mut queue = VecDeque::from([("/".to_string(), 0u32)]);
        depth.insert("/".into(), 0);
        while let Some((url, d)) = queue.pop_front() {
            let (path, _) = url.split_once('?').unwrap_or((&url, ""));
            let next: Vec<(String, u32)> = match self.answer(path, None) {
                Answer::Redirect(to) => vec![(to, d)],
                Answer::Page(_) => match (
                    self.page_id(path),
                    Site::extra_links(path).or_else(|| Site::country_links(path)),
                ) {
                    (Some(i), _) => self
                        .links(i)
                        .into_iter()
                        .filter_map(|l| l.to)
                        .map(|to| (to, d + 1))
                        .collect(),
                    (None, Some(links)) => links
                        .into_iter()
                        .filter_map(|l| l.to)
                        .map(|to| (to, d + 1))
                        .collect(),
                    (None, None) => Vec::new(),
                },
                _ => Vec::new(),
            };
            for (to, nd) in next {
                if to.starts_with("/private/") || max_depth.is_some_and(|m| nd > m) {
                    continue;
                }
                if !depth.contains_key(&to) {
                    depth.insert(to.clone(), nd);
                    queue.push_back((to, nd));
                }
            }
        }
        depth
    }

    /// Writes the site as static files under `dir` (for nginx and other servers): `index.html`,
    /// `p/{i}.html`, `docs/index.html`, `docs/guide`, `about`, `robots.txt` (a server serves the
    /// pages without an extension with its default type). Redirects and private pages are left
    /// out (they are 404 there).
    pub fn export(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir.join("p"))?;
        std::fs::create_dir_all(dir.join("docs"))?;
        std::fs::write(dir.join("robots.txt"), ROBOTS_TXT)?;
        std::fs::write(dir.join("index.html"), self.html(0))?;
        std::fs::create_dir_all(dir.join("countries"))?;
        std::fs::write(
            dir.join("countries/index.html"),
            Site::country_page("/countries/").unwrap_or_default(),
        )?;
        for (cc, _) in crate::countries::COUNTRIES {
            let lc = cc.to_lowercase();
            let page = Site::country_page(&format!("/countries/{lc}.html")).unwrap_or_default();
            std::fs::write(dir.join(format!("countries/{lc}.html")), page)?;
        }
        for (path, _) in EXTRA {
            let links = Site::extra_links(path).unwrap_or_default();
            let file = match path.trim_start_matches('/') {
                "docs/" => "docs/index.html".to_string(),
                other => other.to_string(),
            };
            std::fs::write(dir.join(file), Site::extra_html(path, &links))?;
        }
        for i in 1..self.n {
            std::fs::write(dir.join("p").join(format!("{i}.html")), self.html(i))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_is_reachable_and_the_traps_are_there() {
        let site = Site::new(1000);
        let all = site.reachable(None);
        for i in 0..1000 {
            assert!(all.contains_key(&Site::path(i)), "page {i}");
        }
        assert!(all.keys().all(|k| !k.starts_with("/private/")));
        assert!(all.contains_key("/missing/7.html"));
        assert!(all.contains_key("/go/51"));
        assert!(all.contains_key("/p/11.html?from=11"));
        assert_eq!(all["/"], 0);
        assert_eq!(all["/p/4.html"], 1);
        assert_eq!(all["/p/5.html"], 2);
        let shallow = site.reachable(Some(2));
        assert!(shallow.values().all(|&d| d <= 2));
        assert!(shallow.len() < all.len());
        assert_eq!(
            site.answer("/go/51", None),
            Answer::Redirect("/p/51.html".into())
        );
        assert_eq!(site.answer("/p/1000.html", None), Answer::NotFound);
        assert_eq!(site.answer("/p/01.html", None), Answer::NotFound);
        assert!(site.html(0).contains("<base href=\"/p/\">"));
        assert_eq!(all["/docs/"], 1);
        assert_eq!(all["/about"], 1);
        assert_eq!(all["/docs/guide"], 2);
        assert_eq!(all["/countries/"], 1);
        assert_eq!(all["/countries/br.html"], 2);
        assert_eq!(
            all.keys().filter(|k| k.starts_with("/countries/")).count(),
            195
        );
        let Answer::Page(br) = site.answer("/countries/br.html", None) else {
            panic!("a country page");
        };
        assert!(br.contains("<img src=\"/flags/br/br.gif\""), "{br}");
        assert_eq!(site.answer("/countries/zz.html", None), Answer::NotFound);
        assert_eq!(site.answer("/countries/BR.html", None), Answer::NotFound);
        assert_eq!(site.html(5), Site::new(1000).html(5), "deterministic");
    }
}
