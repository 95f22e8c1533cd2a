//! An `expect` step's bounds on a run statistic: at least, at most, or
//! exactly a value (exactly 0: none happened).

/// The bounds one `expect` step puts on a statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    at_least: Option<u64>,
    at_most: Option<u64>,
}

impl Bounds {
    /// The bounds of a step that passed the format's validation: `equals` is
    /// both.
    pub(crate) fn new(at_least: Option<u64>, at_most: Option<u64>, equals: Option<u64>) -> Bounds {
        Bounds {
            at_least: equals.or(at_least),
            at_most: equals.or(at_most),
        }
    }

    /// Whether `value` of `stat` is within the bounds, and if not, why.
    pub(crate) fn check(&self, stat: &str, value: u64) -> Result<(), String> {
        let low = self.at_least.unwrap_or(0);
        let high = self.at_most.unwrap_or(u64::MAX);
        if (low..=high).contains(&value) {
            return Ok(());
        }
        let wanted = match (self.at_least, self.at_most) {
            (Some(l), Some(h)) if l == h => format!("{stat} == {l}"),
            (Some(l), Some(h)) => format!("{l} <= {stat} <= {h}"),
            (Some(l), None) => format!("{stat} >= {l}"),
            (None, _) => format!("{stat} <= {high}"),
        };
        let why = if value < low {
            "the scenario did not exercise what it is about"
        } else {
            "the run did more of it than the scenario allows"
        };
        Err(format!("expected {wanted}, got {value}: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_fails_on_the_wrong_side() {
        let at_least = Bounds::new(Some(2), None, None);
        assert!(at_least.check("s", 2).is_ok() && at_least.check("s", 9).is_ok());
        let e = at_least.check("s", 1).unwrap_err();
        assert!(e.contains("s >= 2, got 1"), "{e}");
        let at_most = Bounds::new(None, Some(2), None);
        assert!(at_most.check("s", 0).is_ok() && at_most.check("s", 2).is_ok());
        let e = at_most.check("s", 3).unwrap_err();
        assert!(e.contains("s <= 2, got 3"), "{e}");
        let none = Bounds::new(None, None, Some(0));
        assert!(none.check("s", 0).is_ok());
        let e = none.check("s", 1).unwrap_err();
        assert!(e.contains("s == 0, got 1"), "{e}");
        let range = Bounds::new(Some(1), Some(3), None);
        assert!(range.check("s", 0).is_err() && range.check("s", 4).is_err());
        assert!(range.check("s", 3).is_ok());
    }
}
