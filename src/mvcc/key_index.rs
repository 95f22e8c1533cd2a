//! The in-memory history of one key: its generations of revisions, like
//! etcd's `keyIndex`. A generation runs from the put that creates the key
//! to the delete (tombstone) that ends it; a put after that starts a new
//! generation with version 1.

use super::revision::Rev;

/// One life of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Generation {
    /// Main revision of the put that created the key.
    pub created: i64,
    /// The key's version as of the latest put in `revs`.
    pub version: i64,
    /// Revisions still stored, ascending; the last one is the tombstone
    /// when `ended`.
    pub revs: Vec<Rev>,
    pub ended: bool,
}

/// Every stored revision of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyHistory {
    gens: Vec<Generation>,
}

impl KeyHistory {
    /// The generation in which the key currently exists, if it does.
    pub fn live(&self) -> Option<&Generation> {
        self.gens.last().filter(|g| !g.ended)
    }

    fn live_mut(&mut self) -> Option<&mut Generation> {
        self.gens.last_mut().filter(|g| !g.ended)
    }

    /// Records a new put; returns its `(create_revision, version)`.
    pub fn put(&mut self, rev: Rev) -> (i64, i64) {
        match self.live_mut() {
            Some(g) => {
                g.version += 1;
                g.revs.push(rev);
                (g.created, g.version)
            }
            None => {
                self.gens.push(Generation {
                    created: rev.main,
                    version: 1,
                    revs: vec![rev],
                    ended: false,
                });
                (rev.main, 1)
            }
        }
    }

    /// Records a stored put while rebuilding: the stored value carries the
    /// creation revision and version (the generation's first puts may have
    /// been compacted away).
    pub fn restore_put(&mut self, rev: Rev, created: i64, version: i64) {
        match self.live_mut() {
            Some(g) => {
                g.version = version;
                g.revs.push(rev);
            }
            None => self.gens.push(Generation {
                created,
                version,
                revs: vec![rev],
                ended: false,
            }),
        }
    }

    /// Ends the live generation; false if the key does not exist.
    pub fn tombstone(&mut self, rev: Rev) -> bool {
        match self.live_mut() {
            Some(g) => {
                g.revs.push(rev);
                g.ended = true;
                true
            }
            None => false,
        }
    }

    /// The put holding the key's value as of main revision `at`, or `None`
    /// if the key did not exist then.
    pub fn visible_at(&self, at: i64) -> Option<Rev> {
        for g in self.gens.iter().rev() {
            if let Some(i) = g.revs.iter().rposition(|r| r.main <= at) {
                let is_tombstone = g.ended && i + 1 == g.revs.len();
                return if is_tombstone {
                    None
                } else {
                    g.revs.get(i).copied()
                };
            }
        }
        None
    }

    /// Forgets what no read at `at` or later can see: whole generations
    /// deleted at or before `at`, and in the others every put superseded at
    /// or before `at`. Returns the removed revisions with their tombstone
    /// flag, so their rows can be deleted.
    pub fn compact(&mut self, at: i64) -> Vec<(Rev, bool)> {
        let mut removed = Vec::new();
        let mut kept = Vec::with_capacity(self.gens.len());
        for mut g in std::mem::take(&mut self.gens) {
            let deleted_by_at = g.ended && g.revs.last().is_some_and(|r| r.main <= at);
            if deleted_by_at {
                let n = g.revs.len();
                removed.extend(g.revs.into_iter().enumerate().map(|(i, r)| (r, i + 1 == n)));
                continue;
            }
            // Keep the latest put at or before `at` (a read at `at` needs it).
            if let Some(i) = g.revs.iter().rposition(|r| r.main <= at) {
                removed.extend(g.revs.drain(..i).map(|r| (r, false)));
            }
            kept.push(g);
        }
        self.gens = kept;
        removed
    }

    /// No stored revision is left.
    pub fn is_empty(&self) -> bool {
        self.gens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Rev {
        Rev { main, sub: 0 }
    }

    #[test]
    fn versions_and_visibility_across_generations() {
        let mut h = KeyHistory::default();
        assert_eq!(h.put(r(2)), (2, 1));
        assert_eq!(h.put(r(3)), (2, 2));
        assert!(h.tombstone(r(4)));
        assert!(!h.tombstone(r(5)), "already deleted");
        assert_eq!(h.put(r(6)), (6, 1));
        assert_eq!(h.visible_at(1), None);
        assert_eq!(h.visible_at(2), Some(r(2)));
        assert_eq!(h.visible_at(3), Some(r(3)));
        assert_eq!(h.visible_at(4), None);
        assert_eq!(h.visible_at(5), None);
        assert_eq!(h.visible_at(100), Some(r(6)));
    }

    #[test]
    fn compaction_keeps_what_reads_at_or_after_it_need() {
        let mut h = KeyHistory::default();
        h.put(r(2));
        h.put(r(3));
        h.tombstone(r(4));
        h.put(r(6));
        h.put(r(8));
        // At 3: the first generation is still live; keep 3, drop 2.
        assert_eq!(h.compact(3), vec![(r(2), false)]);
        assert_eq!(h.visible_at(3), Some(r(3)));
        // At 7: the first generation was deleted by then; the second keeps 6.
        assert_eq!(h.compact(7), vec![(r(3), false), (r(4), true)]);
        assert_eq!(h.visible_at(7), Some(r(6)));
        assert_eq!(h.visible_at(8), Some(r(8)));
        h.tombstone(r(9));
        assert_eq!(h.compact(9).len(), 3);
        assert!(h.is_empty());
    }
}
