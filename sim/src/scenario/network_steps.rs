//! The script's link steps: `split` (groups), `cut_link` (one way) and
//! `link_faults` (per-message drop, delay, duplication), each until `heal`
//! or for `ms`.

use super::script::Script;
use crate::cluster::links::LinkRule;
use crate::scenario_file::{Step, Target};

impl Script<'_> {
    /// Runs `step` if it is a link step (`None` otherwise).
    pub(super) fn link_step(&mut self, step: &Step) -> Option<Result<(), String>> {
        match step {
            Step::Split { groups, ms } => {
                self.split(groups, *ms);
                Some(Ok(()))
            }
            Step::CutLink { from, to, ms } => Some(self.cut_link(from, to, *ms)),
            Step::LinkFaults {
                from,
                to,
                drop,
                duplicate,
                delay_ms,
                ms,
            } => Some(self.link_faults(from, to, *drop, *duplicate, *delay_ms, *ms)),
            _ => None,
        }
    }

    fn until(&self, ms: Option<u64>) -> u64 {
        ms.map_or(u64::MAX, |ms| self.sup.now_ms() + ms)
    }

    fn split(&mut self, groups: &[Vec<u64>], ms: Option<u64>) {
        let until_ms = self.until(ms);
        let mut rules = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            let others = groups
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, g)| g);
            for (from, to) in group
                .iter()
                .flat_map(|f| others.clone().map(move |t| (*f, *t)))
            {
                rules.push(cut(from, to, until_ms));
            }
        }
        self.sup
            .add_link_rules(rules, format_args!("split into {groups:?}"));
    }

    fn cut_link(&mut self, from: &Target, to: &Target, ms: Option<u64>) -> Result<(), String> {
        let (from, to) = (self.resolve(from)?, self.resolve(to)?);
        let rule = cut(from, to, self.until(ms));
        self.sup
            .add_link_rules(vec![rule], format_args!("link {from} -> {to} cut"));
        Ok(())
    }

    fn link_faults(
        &mut self,
        from: &Option<Target>,
        to: &Option<Target>,
        drop: f64,
        duplicate: f64,
        delay_ms: u64,
        ms: Option<u64>,
    ) -> Result<(), String> {
        let from = from.as_ref().map(|t| self.resolve(t)).transpose()?;
        let to = to.as_ref().map(|t| self.resolve(t)).transpose()?;
        let rule = LinkRule {
            from,
            to,
            until_ms: self.until(ms),
            drop,
            delay_ms,
            duplicate,
        };
        let what = format_args!(
            "link faults {from:?} -> {to:?}: drop {drop}, duplicate {duplicate}, delay {delay_ms} ms"
        );
        self.sup.add_link_rules(vec![rule], what);
        Ok(())
    }
}

/// Every message from `from` to `to` is lost until `until_ms`.
fn cut(from: u64, to: u64, until_ms: u64) -> LinkRule {
    LinkRule {
        from: Some(from),
        to: Some(to),
        until_ms,
        drop: 1.0,
        delay_ms: 0,
        duplicate: 0.0,
    }
}
