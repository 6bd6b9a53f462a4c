//! One pass of `lol_html` over a document: the raw URLs of its links and requisites, its first
//! `<base href>` and its robots `<meta>`s, attribute values decoded as a browser decodes them.
//!
//! `lol_html` hands out attribute values as written, character references and all; they are
//! decoded here with `htmlize::unescape_attribute`, which follows the HTML Standard's rules for
//! attribute values over the full WHATWG entity table: legacy references without `;` (`&copy`),
//! except before `=` or an alphanumeric (`?a=1&amp=2` keeps `&amp`), and numeric references
//! with the spec's replacements (`&#x80;` is `€`, `&#0;` and surrogates are U+FFFD). Tag and
//! attribute names are matched ignoring case; of a repeated attribute the first counts.
//! Resolving is left to the caller, since a `<base>` anywhere applies to every URL.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::LazyLock;

use lol_html::html_content::{Element, TextChunk};
use lol_html::{
    AsciiCompatibleEncoding, ElementContentHandlers, HandlerResult, HtmlRewriter, Selector,
    Settings,
};

use super::robots::Robots;

/// What a pass looks for besides links.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Want {
    /// Leave out `<a>`/`<area>` whose `rel` has the token `nofollow`.
    pub skip_nofollow_links: bool,
    /// Collect the page requisites.
    pub requisites: bool,
}

/// What a pass found: raw (decoded, unresolved) URLs in document order.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The `href` of every `<a>` and `<area>`.
    pub links: Vec<String>,
    /// The requisites, when asked for.
    pub assets: Vec<Asset>,
    /// The `href` of the first `<base>` that has one.
    pub base: Option<String>,
    /// The robots `<meta>`s.
    pub robots: Robots,
}

/// A requisite as found, its URLs still to be read out of it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Asset {
    /// One URL (`src`, `href`, `poster`, `data`).
    Url(String),
    /// A `srcset` value: several URLs.
    Srcset(String),
    /// CSS: a `<style>` element's text or a `style` attribute.
    Css(String),
}

/// `<link rel>` tokens whose target a browser loads to show the page.
const REQUISITE_RELS: [&str; 6] = [
    "stylesheet",
    "icon",
    "apple-touch-icon",
    "apple-touch-icon-precomposed",
    "preload",
    "modulepreload",
];

/// The selectors a pass matches, parsed once (`element!` parses its selector on every page: 1%
/// of a crawl's time). Names only, attributes checked in the handlers: attribute conditions make
/// lol_html's matching slower on every element (measured: 9% of a page's time).
struct Selectors {
    links: Selector,
    base: Selector,
    meta: Selector,
    media: Selector,
    link: Selector,
    style: Selector,
    style_attr: Selector,
}

static SELECTORS: LazyLock<Selectors> = LazyLock::new(|| {
    let parse = |s: &str| s.parse::<Selector>().expect("a valid selector");
    Selectors {
        links: parse("a, area"),
        base: parse("base"),
        // `meta`, not `meta[name][content]`, as above: a page has few `<meta>`s.
        meta: parse("meta"),
        media: parse("img, source, video, audio, track, embed, script, input, object"),
        link: parse("link"),
        style: parse("style"),
        style_attr: parse("[style]"),
    }
});

/// The handler of elements that match `selector`.
fn on<'h>(
    selector: &'static Selector,
    handler: impl FnMut(&mut Element<'_, '_>) -> HandlerResult + 'h,
) -> (Cow<'static, Selector>, ElementContentHandlers<'h>) {
    (
        Cow::Borrowed(selector),
        ElementContentHandlers::default().element(handler),
    )
}

/// Reads `html`, bytes in `encoding`.
pub(crate) fn scan(html: &[u8], encoding: AsciiCompatibleEncoding, want: Want) -> Found {
    let sel = &*SELECTORS;
    let found = RefCell::new(Found::default());
    // A `<style>` element's text arrives in chunks.
    let style = RefCell::new(String::new());
    {
        let push = |asset| found.borrow_mut().assets.push(asset);
        let link = |el: &mut Element| {
            if want.skip_nofollow_links && has_token(el, "rel", "nofollow") {
                return Ok(());
            }
            if let Some(href) = attr(el, "href") {
                found.borrow_mut().links.push(href);
            }
            Ok(())
        };
        let mut settings = Settings::new()
            .with_encoding(encoding)
            // Strict mode stops at markup whose parsing depends on the tree (rare); a reader
            // would rather keep going, as a browser does.
            .with_strict(false)
            .append_element_content_handler(on(&sel.links, link))
            .append_element_content_handler(on(&sel.base, |el| {
                let mut found = found.borrow_mut();
                if found.base.is_none() {
                    found.base = attr(el, "href");
                }
                Ok(())
            }))
            .append_element_content_handler(on(&sel.meta, |el| {
                if let (Some(name), Some(content)) = (attr(el, "name"), attr(el, "content")) {
                    found.borrow_mut().robots.meta(&name, &content);
                }
                Ok(())
            }));
        if want.requisites {
            settings = settings
                .append_element_content_handler(on(&sel.media, |el| {
                    requisite(el, &push);
                    Ok(())
                }))
                .append_element_content_handler(on(&sel.link, |el| {
                    let rel = attr(el, "rel").unwrap_or_default();
                    let mut tokens = rel.split_ascii_whitespace();
                    if tokens.any(|t| REQUISITE_RELS.iter().any(|r| t.eq_ignore_ascii_case(r))) {
                        if let Some(href) = attr(el, "href") {
                            push(Asset::Url(href));
                        }
                    }
                    Ok(())
                }))
                .append_element_content_handler((
                    Cow::Borrowed(&sel.style),
                    ElementContentHandlers::default().text(|chunk: &mut TextChunk| {
                        let mut text = style.borrow_mut();
                        text.push_str(chunk.as_str());
                        if chunk.last_in_text_node() {
                            push(Asset::Css(std::mem::take(&mut *text)));
                        }
                        Ok(())
                    }),
                ));
            // `[style]` makes lol_html read the attributes of every element (+40% per page): it
            // is only asked for when some CSS in the page could hold a URL.
            if mentions_css_url(html) {
                settings = settings.append_element_content_handler(on(&sel.style_attr, |el| {
                    if let Some(css) = attr(el, "style") {
                        push(Asset::Css(css));
                    }
                    Ok(())
                }));
            }
        }
        // Nothing is rewritten: the output is dropped.
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        // lol_html fails only on its memory limit (unset) or a handler's error (none): whatever
        // was found before an error still counts.
        if rewriter.write(html).is_ok() {
            let _ = rewriter.end();
        }
    }
    found.into_inner()
}

/// Whether `html` has `url(` or `image-set(` anywhere (ignoring case), without which no `style`
/// attribute holds a URL. (A function name written with CSS escapes, `u\72l(`, is missed:
/// browsers read it, no page writes it.)
fn mentions_css_url(html: &[u8]) -> bool {
    memchr::memchr_iter(b'(', html).any(|i| {
        let before = &html[..i];
        let ends_with = |name: &[u8]| {
            before.len() >= name.len()
                && before[before.len() - name.len()..].eq_ignore_ascii_case(name)
        };
        ends_with(b"url") || ends_with(b"image-set")
    })
}

/// The requisites of a media, script or embedding element.
fn requisite(el: &Element, push: &impl Fn(Asset)) {
    let name = el.tag_name();
    let url = |attribute: &str| attr(el, attribute).map(Asset::Url);
    match name.as_str() {
        "img" | "source" => {
            push_some(push, url("src"));
            push_some(push, attr(el, "srcset").map(Asset::Srcset));
        }
        "video" => {
            push_some(push, url("src"));
            push_some(push, url("poster"));
        }
        "input" => {
            let image =
                attr(el, "type").is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case("image"));
            if image {
                push_some(push, url("src"));
            }
        }
        "object" => push_some(push, url("data")),
        _ => push_some(push, url("src")),
    }
}

fn push_some(push: &impl Fn(Asset), asset: Option<Asset>) {
    if let Some(asset) = asset {
        push(asset);
    }
}

/// The value of attribute `name`, character references decoded.
fn attr(el: &Element, name: &str) -> Option<String> {
    let raw = el.get_attribute(name)?;
    // Most values have no `&`: the string is handed back as it is, not copied.
    Some(htmlize::unescape_attribute(raw).into_owned())
}

/// Whether attribute `name` is a set of space-separated tokens that has `token` (ignoring case,
/// as `rel` is).
fn has_token(el: &Element, name: &str, token: &str) -> bool {
    attr(el, name).is_some_and(|v| {
        v.split_ascii_whitespace()
            .any(|t| t.eq_ignore_ascii_case(token))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(html: &str) -> Vec<String> {
        scan(
            html.as_bytes(),
            AsciiCompatibleEncoding::utf_8(),
            Want::default(),
        )
        .links
    }

    #[test]
    fn attribute_values_are_decoded_as_a_browser_does() {
        assert_eq!(
            links(
                r#"<a href="?a=1&amp;b=2&amp=3&ampx=4&copy=5&copy;&copy.&notit;&#x80;&#0;&#47;&#x;">"#
            ),
            ["?a=1&b=2&amp=3&ampx=4&copy=5©©.&notit;€\u{FFFD}/&#x;"]
        );
        assert_eq!(links("<a href=&lt;&gt&quot&nbsp;x>"), ["<>\"\u{a0}x"]);
    }

    #[test]
    fn names_ignore_case_and_the_first_of_a_repeated_attribute_counts() {
        assert_eq!(
            links("<A HREF=one.html href=two.html><AREA Href='three'>"),
            ["one.html", "three"]
        );
    }

    #[test]
    fn only_the_first_base_with_an_href_counts() {
        let found = scan(
            b"<base target=x><a href=a><base href=/one/><base href=/two/>",
            AsciiCompatibleEncoding::utf_8(),
            Want::default(),
        );
        assert_eq!(found.base.as_deref(), Some("/one/"));
    }

    #[test]
    fn nofollow_links_and_robots_meta() {
        let html = br#"<meta name=ROBOTS content="noindex"><a rel="external NoFollow" href=a>
            <a href=b rel=nofollowx><area rel=nofollow href=c>"#;
        let want = Want {
            skip_nofollow_links: true,
            ..Want::default()
        };
        let found = scan(html, AsciiCompatibleEncoding::utf_8(), want);
        assert_eq!(found.links, ["b"]);
        assert!(found.robots.noindex && !found.robots.nofollow);
    }

    #[test]
    fn style_text_in_chunks_is_one_asset() {
        let want = Want {
            requisites: true,
            ..Want::default()
        };
        let found = scan(
            b"<style>a{background:url(a.png)}</style><p style='background:url(&quot;b.png&quot;)'>",
            AsciiCompatibleEncoding::utf_8(),
            want,
        );
        assert_eq!(
            found.assets,
            [
                Asset::Css("a{background:url(a.png)}".into()),
                Asset::Css("background:url(\"b.png\")".into())
            ]
        );
    }
}
