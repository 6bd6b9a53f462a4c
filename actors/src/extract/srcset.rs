//! The URLs of a `srcset` attribute (`<img>`, `<source>`), read with the HTML Standard's "parse a
//! srcset attribute": candidates are a URL and descriptors (`2x`, `480w`), separated by commas,
//! and a URL may itself hold commas. A candidate whose descriptors are invalid is dropped, as a
//! browser never loads it; every valid candidate is a requisite, since which one a browser picks
//! depends on its screen.

/// Calls `f` with the URL of every valid candidate of `input`, in order.
pub(crate) fn urls<'s>(input: &'s str, mut f: impl FnMut(&'s str)) {
    let bytes = input.as_bytes();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b',') {
            pos += 1;
        }
        if pos >= bytes.len() {
            return;
        }
        let start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let url = &input[start..pos];
        if url.ends_with(',') {
            // No descriptors: the commas end the candidate.
            f(url.trim_end_matches(','));
            continue;
        }
        let (descriptors, end) = descriptors(input, pos);
        pos = end;
        if valid(&descriptors) {
            f(url);
        }
    }
}

/// The descriptor tokenizer: the descriptors of a candidate from `pos`, and where it ends.
fn descriptors(input: &str, mut pos: usize) -> (Vec<&str>, usize) {
    #[derive(PartialEq)]
    enum State {
        In,
        Parens,
        After,
    }
    let bytes = input.as_bytes();
    let mut found = Vec::new();
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    let mut start = pos;
    let mut state = State::In;
    while pos < bytes.len() {
        let c = bytes[pos];
        match state {
            State::In if c.is_ascii_whitespace() => {
                if pos > start {
                    found.push(&input[start..pos]);
                }
                state = State::After;
            }
            State::In if c == b',' => {
                if pos > start {
                    found.push(&input[start..pos]);
                }
                return (found, pos + 1);
            }
            State::In if c == b'(' => state = State::Parens,
            State::Parens if c == b')' => state = State::In,
            State::After if !c.is_ascii_whitespace() => {
                state = State::In;
                start = pos;
                // Reconsume this byte in the descriptor state.
                continue;
            }
            _ => {}
        }
        pos += 1;
    }
    if state != State::After && pos > start {
        found.push(&input[start..pos]);
    }
    (found, pos)
}

/// The descriptor parser: at most one width (`480w`) or density (`1.5x`), an optional height
/// (`200h`, only with a width), nothing else.
fn valid(descriptors: &[&str]) -> bool {
    let (mut width, mut density, mut height) = (false, false, false);
    for d in descriptors {
        let Some((number, kind)) = d.len().checked_sub(1).map(|n| d.split_at(n)) else {
            return false;
        };
        let positive_integer = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && number.bytes().any(|b| b != b'0');
        match kind {
            "w" if !width && !density && positive_integer => width = true,
            "h" if !height && !density && positive_integer => height = true,
            "x" if !width && !density && !height && is_density(number) => density = true,
            _ => return false,
        }
    }
    !height || width
}

/// A valid floating-point number (HTML's: no `+`, no `inf`), not negative.
fn is_density(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['+', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && s.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        urls(s, |u| out.push(u));
        out
    }

    #[test]
    fn candidates_and_descriptors() {
        assert_eq!(all("a.png"), ["a.png"]);
        assert_eq!(all("a.png 1x, b.png 2x"), ["a.png", "b.png"]);
        assert_eq!(
            all(" a.png 480w,b.png 800w 600h ,  c.png"),
            ["a.png", "b.png", "c.png"]
        );
        assert_eq!(all("a.png,b.png"), ["a.png,b.png"]);
        assert_eq!(all("a.png,, b.png 1.5x"), ["a.png", "b.png"]);
        assert_eq!(all("img?w=1,2 2x, c.png"), ["img?w=1,2", "c.png"]);
        assert_eq!(all("a.png 1x (future, stuff), b.png"), ["b.png"]);
    }

    #[test]
    fn invalid_descriptors_drop_their_candidate() {
        assert_eq!(
            all("a.png 1x 2x, b.png 0w, c.png 100h, d.png -1x, e.png 1e1x"),
            ["e.png"]
        );
        assert_eq!(
            all("a.png 10w 1x, b.png foo, c.png +1x"),
            Vec::<&str>::new()
        );
    }
}
