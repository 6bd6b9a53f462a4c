//! The robots directives of a page that concern links: `nofollow`, `noindex` and `none` (both),
//! from `<meta name="robots">`, `<meta name="flags">` (flags' product token, as in robots.txt)
//! and `X-Robots-Tag` headers.
//!
//! An `X-Robots-Tag` value is a comma list of directives, each possibly prefixed by a user agent
//! (`googlebot: noindex, nofollow`): the prefix applies to the directives after it, up to the
//! next prefix. Unprefixed directives and those for `flags` count; others are someone else's.

/// The product token that `<meta name=...>` and `X-Robots-Tag` prefixes address flags by.
const AGENT: &str = "flags";

/// Directives that take a value after a colon, so that colon is no user agent's.
const WITH_VALUE: [&str; 4] = [
    "unavailable_after",
    "max-snippet",
    "max-image-preview",
    "max-video-preview",
];

/// What a page asks of robots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Robots {
    pub nofollow: bool,
    pub noindex: bool,
}

impl Robots {
    /// The directives of every `x-robots-tag` header that apply to flags.
    pub fn from_headers(headers: &[(String, String)]) -> Self {
        let mut robots = Robots::default();
        for (_, value) in headers.iter().filter(|(n, _)| n == "x-robots-tag") {
            robots.header(value);
        }
        robots
    }

    /// A `<meta name content>`: counts when `name` is `robots` or `flags`.
    pub fn meta(&mut self, name: &str, content: &str) {
        let name = name.trim_ascii();
        if name.eq_ignore_ascii_case("robots") || name.eq_ignore_ascii_case(AGENT) {
            self.directives(content);
        }
    }

    /// One `X-Robots-Tag` value.
    fn header(&mut self, value: &str) {
        let mut ours = true;
        for item in value.split(',') {
            let mut directive = item;
            if let Some((before, after)) = item.split_once(':') {
                let before = before.trim_ascii();
                if !WITH_VALUE.iter().any(|d| before.eq_ignore_ascii_case(d)) {
                    ours = before.eq_ignore_ascii_case(AGENT);
                    directive = after;
                }
            }
            if ours {
                self.directives(directive);
            }
        }
    }

    /// Directives separated by commas or whitespace; unknown ones are ignored.
    fn directives(&mut self, list: &str) {
        for d in list.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
            if d.eq_ignore_ascii_case("nofollow") {
                self.nofollow = true;
            } else if d.eq_ignore_ascii_case("noindex") {
                self.noindex = true;
            } else if d.eq_ignore_ascii_case("none") {
                self.nofollow = true;
                self.noindex = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(values: &[&str]) -> Robots {
        let headers: Vec<(String, String)> = values
            .iter()
            .map(|v| ("x-robots-tag".to_string(), v.to_string()))
            .collect();
        Robots::from_headers(&headers)
    }

    const BOTH: Robots = Robots {
        nofollow: true,
        noindex: true,
    };
    const NOFOLLOW: Robots = Robots {
        nofollow: true,
        noindex: false,
    };
    const NOINDEX: Robots = Robots {
        nofollow: false,
        noindex: true,
    };

    #[test]
    fn header_lists_agents_and_several_headers() {
        assert_eq!(header(&["noindex, nofollow"]), BOTH);
        assert_eq!(header(&["NONE"]), BOTH);
        assert_eq!(header(&["googlebot: nofollow"]), Robots::default());
        assert_eq!(header(&["flags: nofollow"]), NOFOLLOW);
        assert_eq!(header(&["Flags: noindex, nofollow"]), BOTH);
        assert_eq!(header(&["googlebot: noindex, flags: nofollow"]), NOFOLLOW);
        assert_eq!(header(&["googlebot: nofollow", "noindex"]), NOINDEX);
        assert_eq!(
            header(&["unavailable_after: 25 Jun 2010 15:00:00 PST, nofollow"]),
            NOFOLLOW
        );
        assert_eq!(header(&["max-snippet: 20"]), Robots::default());
    }

    #[test]
    fn meta_names_and_contents() {
        let meta = |name, content| {
            let mut r = Robots::default();
            r.meta(name, content);
            r
        };
        assert_eq!(meta("ROBOTS", "noindex,nofollow"), BOTH);
        assert_eq!(meta("robots", "index follow"), Robots::default());
        assert_eq!(meta("flags", "nofollow"), NOFOLLOW);
        assert_eq!(meta("googlebot", "none"), Robots::default());
        assert_eq!(meta("robots", "none"), BOTH);
    }
}
