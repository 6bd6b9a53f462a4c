//! The URLs of CSS: `url(...)` (quoted, unquoted, escaped), `src(...)`, the strings of
//! `image-set(...)`, and `@import "..."`, read with `cssparser` (Servo's tokenizer, which `lol_html`
//! already uses for its selectors), so escapes, comments and strings are read as a browser reads
//! them. A stylesheet's encoding comes from its BOM, its `Content-Type` charset, its `@charset`
//! rule, else UTF-8 (CSS Syntax's "determine the fallback encoding", in `cssparser`).

use cssparser::{ParseError, Parser, ParserInput, Token};
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};

/// The encoding a stylesheet is decoded with, short of a BOM (which `Encoding::decode` honours
/// over it): `charset` from the `Content-Type` header, else its `@charset`, else UTF-8.
pub(crate) fn sheet_encoding(css: &[u8], charset: Option<&str>) -> &'static Encoding {
    cssparser::stylesheet_encoding::<EncodingRs>(css, charset.map(str::as_bytes), None)
}

/// `cssparser`'s view of encoding_rs.
struct EncodingRs;

impl cssparser::EncodingSupport for EncodingRs {
    type Encoding = &'static Encoding;

    fn from_label(ascii_label: &[u8]) -> Option<Self::Encoding> {
        Encoding::for_label(ascii_label)
    }

    fn utf8() -> Self::Encoding {
        UTF_8
    }

    fn is_utf16_be_or_le(encoding: &Self::Encoding) -> bool {
        *encoding == UTF_16BE || *encoding == UTF_16LE
    }
}

/// Calls `f` with every URL of the CSS `text` (a stylesheet, a `<style>` element's text or a
/// `style` attribute), in order, unresolved.
pub(crate) fn urls(text: &str, f: &mut dyn FnMut(&str)) {
    let mut input = ParserInput::new(text);
    walk(&mut Parser::new(&mut input), f);
}

/// The tokens of one block, nested blocks included.
fn walk(p: &mut Parser<'_, '_>, f: &mut dyn FnMut(&str)) {
    let mut after_import = false;
    while let Ok(token) = p.next_including_whitespace() {
        let token = token.clone();
        let import = std::mem::take(&mut after_import);
        match token {
            Token::UnquotedUrl(url) => f(&url),
            Token::AtKeyword(name) if name.eq_ignore_ascii_case("import") => after_import = true,
            Token::WhiteSpace(_) => after_import = import,
            Token::QuotedString(url) if import => f(&url),
            Token::Function(name) => {
                let kind = if name.eq_ignore_ascii_case("url") || name.eq_ignore_ascii_case("src") {
                    Function::Url
                } else if name.eq_ignore_ascii_case("image-set")
                    || name.eq_ignore_ascii_case("-webkit-image-set")
                {
                    Function::ImageSet
                } else {
                    Function::Other
                };
                nested(p, |p| function(p, kind, f));
            }
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                nested(p, |p| walk(p, f));
            }
            _ => {}
        }
    }
}

/// What a function's arguments hold.
#[derive(Clone, Copy)]
enum Function {
    /// `url("x")`, `src("x")`: the string is a URL.
    Url,
    /// `image-set("a.png" 1x, url(b.png) 2x)`: every string is a URL.
    ImageSet,
    /// Anything else, which may still hold `url()`s (`var()`, `-webkit-cross-fade()`).
    Other,
}

/// The arguments of a function.
fn function(p: &mut Parser<'_, '_>, kind: Function, f: &mut dyn FnMut(&str)) {
    match kind {
        Function::Url => {
            if let Ok(Token::QuotedString(url)) = p.next() {
                f(url);
            }
        }
        Function::ImageSet => {
            while let Ok(token) = p.next() {
                match token.clone() {
                    Token::QuotedString(url) | Token::UnquotedUrl(url) => f(&url),
                    Token::Function(_) | Token::ParenthesisBlock => nested(p, |p| walk(p, f)),
                    _ => {}
                }
            }
        }
        Function::Other => walk(p, f),
    }
}

/// Runs `inner` on the block that the last token opened (a parse error there only ends it).
fn nested(p: &mut Parser<'_, '_>, inner: impl FnOnce(&mut Parser<'_, '_>)) {
    let _: Result<(), ParseError<'_, ()>> = p.parse_nested_block(|p| {
        inner(p);
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(css: &str) -> Vec<String> {
        let mut out = Vec::new();
        urls(css, &mut |u| out.push(u.to_string()));
        out
    }

    #[test]
    fn url_forms() {
        assert_eq!(
            all(
                r#"a { background: url(a.png) } b { background: url( "b.png" ) } c{x:URL('c.png')}"#
            ),
            ["a.png", "b.png", "c.png"]
        );
        assert_eq!(all(r"x { y: url(a\)b\ c.png) }"), ["a)b c.png"]);
        assert_eq!(all(r#"x { y: url("q\"uote.png") }"#), ["q\"uote.png"]);
        assert_eq!(
            all("/* url(no.png) */ x { content: 'url(no.png)' }"),
            Vec::<String>::new()
        );
        assert_eq!(
            all("@media screen { @font-face { src: url(f.woff2) format('woff2'), url(f.woff) } }"),
            ["f.woff2", "f.woff"]
        );
    }

    #[test]
    fn imports_and_image_sets() {
        assert_eq!(
            all("@import \"a.css\"; @import url(b.css) screen; @IMPORT 'c.css';"),
            ["a.css", "b.css", "c.css"]
        );
        assert_eq!(
            all("x { content: \"not-import.css\" }"),
            Vec::<String>::new()
        );
        assert_eq!(
            all("x { background: image-set(\"a.png\" 1x, url(b.png) 2x) }"),
            ["a.png", "b.png"]
        );
    }

    #[test]
    fn style_attributes_and_encodings() {
        assert_eq!(all("background-image: url(bg.png); color: red"), ["bg.png"]);
        assert_eq!(
            sheet_encoding(b"@charset \"iso-8859-1\"; x{}", None).name(),
            "windows-1252"
        );
        assert_eq!(
            sheet_encoding(b"@charset \"iso-8859-1\";", Some("koi8-r")).name(),
            "KOI8-R"
        );
        assert_eq!(
            sheet_encoding(b"@charset \"utf-16le\";", None).name(),
            "UTF-8"
        );
        assert_eq!(sheet_encoding(b"x{}", None).name(), "UTF-8");
    }
}
