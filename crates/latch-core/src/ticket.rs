//! `ticket_pattern`: the regular expression a request's ticket reference must match in full,
//! compiled once when the config is loaded.

use std::fmt;

use regex::Regex;

/// A resource's `ticket_pattern`, compiled: [`TicketPattern::matches`] accepts a ticket reference
/// only when the whole of it matches, whether or not the pattern is written with `^` and `$`.
///
/// Compared, cloned and printed by its source text; the compiled form follows from it.
#[derive(Clone)]
pub struct TicketPattern {
    /// The pattern as written in the config, shown to people (`latch check`, refusals).
    source: String,
    /// `^(?:source)$`: anchored here so that `PAY-1` cannot match inside `xPAY-1 and more`.
    anchored: Regex,
}

/// Why a ticket pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid ticket pattern `{pattern}`: {problem} (expected a regular expression that a whole \
     ticket reference must match, e.g. `^PAY-[0-9]+$`)"
)]
pub struct TicketPatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it: the regex parser's message, one line.
    pub problem: String,
}

impl TicketPattern {
    /// Compiles `source`; an empty pattern is refused (leave the key out to accept any ticket).
    pub fn new(source: &str) -> Result<Self, TicketPatternError> {
        let error = |problem: String| TicketPatternError {
            pattern: source.to_owned(),
            problem,
        };
        if source.is_empty() {
            return Err(error("it is empty".to_owned()));
        }
        // The pattern alone first: wrapped in a group, an unbalanced `a)|(b` would compile into
        // something other than what was written.
        Regex::new(source).map_err(|regex_error| error(problem(&regex_error)))?;
        let anchored = Regex::new(&format!("^(?:{source})$"))
            .map_err(|regex_error| error(problem(&regex_error)))?;
        Ok(Self {
            source: source.to_owned(),
            anchored,
        })
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `ticket` matches the pattern (not merely a part of it).
    pub fn matches(&self, ticket: &str) -> bool {
        self.anchored.is_match(ticket)
    }
}

/// The regex crate's message is several lines (the pattern, a caret, `error: …`); a problem is
/// one line, so keep the `error:` line, which says what is wrong.
fn problem(error: &regex::Error) -> String {
    match error {
        regex::Error::CompiledTooBig(limit) => {
            format!("it compiles to more than the {limit} bytes allowed")
        }
        other => {
            let text = other.to_string();
            text.lines()
                .find_map(|line| line.trim().strip_prefix("error: "))
                .map_or_else(|| text.trim().replace('\n', "; "), str::to_owned)
        }
    }
}

impl PartialEq for TicketPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for TicketPattern {}

impl std::hash::Hash for TicketPattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.source.hash(state);
    }
}

impl fmt::Debug for TicketPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TicketPattern").field(&self.source).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_whole_ticket_whether_or_not_anchored() {
        for source in ["PAY-[0-9]+", "^PAY-[0-9]+$", r"^[A-Z]+-\d+$", "PAY-1|INC-2"] {
            let pattern = TicketPattern::new(source).unwrap();
            assert_eq!(pattern.as_str(), source);
            assert!(
                pattern.matches("PAY-1") || pattern.matches("INC-2"),
                "{source}"
            );
            for bad in ["xPAY-1", "PAY-1x", "PAY-1\n", "", "PAY-1 INC-2"] {
                assert!(!pattern.matches(bad), "{source} matched {bad:?}");
            }
        }
        // An alternation is anchored as a whole, not only its first and last branch.
        let either = TicketPattern::new("PAY-1|INC-2").unwrap();
        assert!(either.matches("INC-2"));
        assert!(!either.matches("PAY-1 and INC-2"));
        // Flags in the pattern do not loosen the anchors.
        let multiline = TicketPattern::new("(?m)^PAY-1$").unwrap();
        assert!(!multiline.matches("x\nPAY-1"));
    }

    #[test]
    fn compares_and_prints_by_source() {
        let a = TicketPattern::new("PAY-[0-9]+").unwrap();
        assert_eq!(a, a.clone());
        assert_ne!(a, TicketPattern::new("^PAY-[0-9]+$").unwrap());
        assert_eq!(format!("{a:?}"), r#"TicketPattern("PAY-[0-9]+")"#);
    }

    #[test]
    fn a_bad_pattern_is_refused_with_the_regex_error_on_one_line() {
        let message = |source: &str| TicketPattern::new(source).unwrap_err().to_string();
        assert_eq!(
            message("[A-Z"),
            "invalid ticket pattern `[A-Z`: unclosed character class (expected a regular \
             expression that a whole ticket reference must match, e.g. `^PAY-[0-9]+$`)"
        );
        // Would compile once wrapped in `^(?:…)$`, but is not a pattern on its own.
        assert!(message("a)|(b").starts_with("invalid ticket pattern `a)|(b`: unopened group"));
        assert!(message("").starts_with("invalid ticket pattern ``: it is empty"));
    }
}
