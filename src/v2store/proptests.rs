//! Property tests: random operation sequences keep the index rule and
//! survive save → recover unchanged; recover never panics on any input.

use super::{V2Error, V2Store};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Set(String, String),
    CreateDir(String),
    CreateInOrder(String, String),
    Delete(String, bool),
}

/// Paths over a tiny alphabet so operations collide (exists, not a dir, not
/// empty...) often; includes a name `create_in_order` may also produce,
/// the root, odd slashes and invalid `..`.
fn path() -> impl Strategy<Value = String> {
    let component = prop::sample::select(vec!["a", "b", "a-b", "00000000000000000003", "", ".."]);
    (any::<bool>(), prop::collection::vec(component, 0..4)).prop_map(|(lead, cs)| {
        let joined = cs.join("/");
        if lead { format!("/{joined}") } else { joined }
    })
}

fn op() -> impl Strategy<Value = Op> {
    // Any chars, control characters and quotes included, to exercise JSON
    // escaping (`any::<String>()` only yields printable ones).
    let value = prop::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter);
    prop_oneof![
        3 => (path(), value.clone()).prop_map(|(p, v)| Op::Set(p, v)),
        1 => path().prop_map(Op::CreateDir),
        1 => (path(), value).prop_map(|(p, v)| Op::CreateInOrder(p, v)),
        2 => (path(), any::<bool>()).prop_map(|(p, r)| Op::Delete(p, r)),
    ]
}

fn apply(s: &mut V2Store, op: &Op) -> Result<(), V2Error> {
    match op {
        Op::Set(p, v) => s.set(p, v).map(drop),
        Op::CreateDir(p) => s.create_dir(p).map(drop),
        Op::CreateInOrder(d, v) => s.create_in_order(d, v).map(drop),
        Op::Delete(p, r) => s.delete(p, *r).map(drop),
    }
}

fn store_from(ops: &[Op]) -> V2Store {
    let mut s = V2Store::new();
    for op in ops {
        let _ = apply(&mut s, op);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ops_keep_index_rule_and_round_trip(ops in prop::collection::vec(op(), 0..40)) {
        let mut s = V2Store::new();
        for op in &ops {
            let before = s.clone();
            match apply(&mut s, op) {
                Ok(()) => prop_assert_eq!(s.index(), before.index() + 1, "{:?}", op),
                Err(_) => prop_assert_eq!(&s, &before, "a failed {:?} changed the store", op),
            }
        }
        let bytes = s.save();
        let r = V2Store::recover(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.index(), s.index());
        prop_assert_eq!(r.dump(), s.dump());
        prop_assert_eq!(r.save(), bytes);
        prop_assert_eq!(r, s);
    }

    #[test]
    fn recover_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = V2Store::recover(&bytes);
    }

    /// Damaged saves: recover either refuses them or yields a store that
    /// satisfies the invariants (it round-trips itself).
    #[test]
    fn recover_of_damaged_saves_never_panics(
        ops in prop::collection::vec(op(), 0..20),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = store_from(&ops).save();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(r) = V2Store::recover(&bytes) {
            prop_assert_eq!(V2Store::recover(&r.save()).ok(), Some(r));
        }
    }
}
