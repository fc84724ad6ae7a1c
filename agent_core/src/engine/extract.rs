//! Pulling the final answer out of a reasoning reply, and normalising answers for voting.
//!
//! Extraction order (first that matches wins):
//! 1. the last `Final answer: ...` line (case-insensitive; `The final answer is ...` too);
//! 2. the last `\boxed{...}` (braces balanced);
//! 3. the last number in the text (`-1,234.5`, `1e3`);
//! 4. the whole reply, trimmed.

use std::sync::LazyLock;

use regex::Regex;

/// How an answer was found in a reply; recorded so traces can explain a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    FinalAnswerLine,
    Boxed,
    LastNumber,
    WholeText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub value: String,
    pub method: Method,
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?").expect("valid regex")
});
static WHOLE_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?$|^[-+]?\.\d+$")
        .expect("valid regex")
});
static FINAL_ANSWER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)final[ \t]+answer[ \t]*(?:is\b)?[ \t*_]*[:：=\-]?[ \t*_]*(?P<rest>[^\n]*)")
        .expect("valid regex")
});

/// Finds the final answer in a reply, in the documented order.
pub fn extract_answer(text: &str) -> Extracted {
    if let Some(value) = final_answer_line(text) {
        return Extracted {
            value,
            method: Method::FinalAnswerLine,
        };
    }
    if let Some(value) = last_boxed(text) {
        return Extracted {
            value,
            method: Method::Boxed,
        };
    }
    if let Some(m) = NUMBER.find_iter(text).last() {
        return Extracted {
            value: m.as_str().to_string(),
            method: Method::LastNumber,
        };
    }
    Extracted {
        value: text.trim().to_string(),
        method: Method::WholeText,
    }
}

fn final_answer_line(text: &str) -> Option<String> {
    let caps = FINAL_ANSWER.captures_iter(text).last()?;
    let rest = caps.name("rest")?.as_str();
    let rest = last_boxed(rest).unwrap_or_else(|| rest.to_string());
    let value = strip_wrappers(&rest);
    (!value.is_empty()).then_some(value)
}

/// The content of the last `\boxed{...}`, honouring nested braces.
fn last_boxed(text: &str) -> Option<String> {
    let start = text.rfind("\\boxed{")? + "\\boxed{".len();
    let mut depth = 1usize;
    for (offset, ch) in text[start..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text[start..start + offset].trim().to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes markdown emphasis, math dollars, quotes and backticks around an answer.
fn strip_wrappers(value: &str) -> String {
    const WRAPPERS: &[char] = &['*', '_', '`', '"', '\'', '$', '“', '”'];
    value.trim().trim_matches(WRAPPERS).trim().to_string()
}

/// Normalises an answer so that equal answers written differently vote together:
/// whitespace collapsed, lower case, wrappers and trailing punctuation removed, and numbers in
/// one canonical form (`1,000`, `1000.0` and `1e3` all become `1000`).
pub fn normalize(answer: &str) -> String {
    let unboxed = last_boxed(answer).unwrap_or_else(|| answer.to_string());
    let collapsed = unboxed.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut value = strip_wrappers(&collapsed).to_lowercase();
    while let Some(stripped) = value.strip_suffix(['.', ',', ';', ':', '!', '?']) {
        value = strip_wrappers(stripped);
    }
    canonical_number(&value).unwrap_or(value)
}

fn canonical_number(value: &str) -> Option<String> {
    let bare = value.strip_prefix('$').unwrap_or(value);
    if !WHOLE_NUMBER.is_match(bare) {
        return None;
    }
    let number: f64 = bare.replace(',', "").parse().ok()?;
    if !number.is_finite() {
        return None;
    }
    if number.fract() == 0.0 && number.abs() < 1e15 {
        // `as i64` is exact below 2^53; adding 0.0 turns -0 into 0.
        Some(format!("{}", (number + 0.0) as i64))
    } else {
        Some(format!("{number}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_answer_line_wins_over_everything_else() {
        let text = "Step 1: 3 + 4 = 7\n\\boxed{9}\nFinal answer: 12\nThat is 99 apples.";
        assert_eq!(
            extract_answer(text),
            Extracted {
                value: "12".into(),
                method: Method::FinalAnswerLine
            }
        );
    }

    #[test]
    fn the_last_final_answer_line_is_used() {
        let text = "Final answer: 5\nWait, recount.\n**Final Answer:** 6";
        assert_eq!(extract_answer(text).value, "6");
    }

    #[test]
    fn final_answer_is_phrase_is_understood() {
        assert_eq!(
            extract_answer("So the final answer is Paris.").value,
            "Paris."
        );
    }

    #[test]
    fn boxed_value_is_used_when_there_is_no_final_answer_line() {
        let text = "We get x = 2, so \\boxed{\\frac{1}{2}} and 7 more.";
        assert_eq!(
            extract_answer(text),
            Extracted {
                value: "\\frac{1}{2}".into(),
                method: Method::Boxed
            }
        );
    }

    #[test]
    fn boxed_inside_a_final_answer_line_is_unwrapped() {
        assert_eq!(extract_answer("Final answer: $\\boxed{42}$").value, "42");
    }

    #[test]
    fn last_number_is_used_next() {
        let text = "There were 3 boxes of 1,250 items, so 3,750 in all";
        assert_eq!(
            extract_answer(text),
            Extracted {
                value: "3,750".into(),
                method: Method::LastNumber
            }
        );
        assert_eq!(extract_answer("it is about -2.5e3 units").value, "-2.5e3");
    }

    #[test]
    fn whole_text_is_the_last_resort() {
        assert_eq!(
            extract_answer("  Paris  \n"),
            Extracted {
                value: "Paris".into(),
                method: Method::WholeText
            }
        );
    }

    #[test]
    fn an_empty_final_answer_line_falls_through() {
        assert_eq!(
            extract_answer("Final answer:\nthe count is 4").method,
            Method::LastNumber
        );
    }

    #[test]
    fn numbers_written_differently_normalise_together() {
        for written in [
            "1000", "1,000", "1000.0", "1e3", "1E3", "$1,000", "1000.", " 1000 ",
        ] {
            assert_eq!(normalize(written), "1000", "{written}");
        }
        assert_eq!(normalize("0.50"), "0.5");
        assert_eq!(normalize("-0"), "0");
        assert_eq!(normalize("-3.25"), "-3.25");
    }

    #[test]
    fn text_normalises_case_whitespace_and_trailing_punctuation() {
        assert_eq!(normalize("  The   Eiffel\nTower. "), "the eiffel tower");
        assert_eq!(normalize("**Paris**!"), "paris");
        assert_eq!(normalize("\"yes\"."), "yes");
        assert_eq!(normalize("\\boxed{B}"), "b");
    }

    #[test]
    fn things_that_only_look_like_numbers_stay_text() {
        assert_eq!(normalize("1,00"), "1,00");
        assert_eq!(normalize("3 apples"), "3 apples");
        assert_eq!(normalize("v1.2.3"), "v1.2.3");
    }
}
