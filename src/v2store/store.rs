//! The tree. Nodes live in one `BTreeMap` keyed by canonical path, so a
//! directory's descendants are one contiguous key range: no recursion (and
//! no recursive drop) anywhere, whatever the depth, and iteration order —
//! hence `save` and `dump` — is the sorted path order.
//!
//! Invariants (checked again by `recover`): the root `/` exists and is a
//! directory; every other node's parent exists and is a directory;
//! `created_index <= modified_index <= index`; a node is never created
//! before its parent.

use super::V2Error;
use super::path::{self, ROOT};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Bounds that keep the tree (and any snapshot we agree to recover) small
/// enough to walk and allocate safely. The same bounds apply to operations
/// and to `recover`, so whatever `save` wrote, `recover` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Limits {
    /// Maximum number of path components of a key.
    pub max_depth: usize,
    /// Maximum number of nodes, the root included.
    pub max_nodes: usize,
}

impl Default for V2Limits {
    fn default() -> Self {
        // etcd's own keys are 4 deep and a cluster's store holds a few
        // hundred nodes; these leave a wide margin and still bound memory.
        V2Limits {
            max_depth: 64,
            max_nodes: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    Leaf(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) kind: Kind,
    pub(super) created_index: u64,
    pub(super) modified_index: u64,
}

impl Node {
    fn dir(index: u64) -> Node {
        Node {
            kind: Kind::Dir,
            created_index: index,
            modified_index: index,
        }
    }
}

/// What a node is, and when it was created and last modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStat {
    pub dir: bool,
    pub created_index: u64,
    pub modified_index: u64,
}

/// One leaf in a [`V2Dump`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafDump {
    pub value: String,
    pub created_index: u64,
    pub modified_index: u64,
}

/// A comparable, printable view of the whole store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Dump {
    pub index: u64,
    /// Every leaf, by canonical path.
    pub leaves: BTreeMap<String, LeafDump>,
    /// Every directory (the root `/` included), sorted.
    pub dirs: Vec<String>,
}

/// etcd's v2 store: a key tree with a store-wide modification index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Store {
    pub(super) nodes: BTreeMap<String, Node>,
    pub(super) index: u64,
    pub(super) limits: V2Limits,
}

impl Default for V2Store {
    fn default() -> Self {
        Self::new()
    }
}

impl V2Store {
    /// An empty store: only the root directory, index 0.
    pub fn new() -> Self {
        Self::with_limits(V2Limits::default())
    }

    /// An empty store with non-default bounds.
    pub fn with_limits(limits: V2Limits) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT.to_string(), Node::dir(0));
        V2Store {
            nodes,
            index: 0,
            limits,
        }
    }

    /// The index of the last successful modification (0 if none).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The bounds this store enforces.
    pub fn limits(&self) -> V2Limits {
        self.limits
    }

    /// Sets a leaf's value, creating missing parent directories (they get
    /// the new index as created and modified index, as in etcd). An existing
    /// leaf keeps its `created_index`. Returns the new store index.
    pub fn set(&mut self, path: &str, value: &str) -> Result<u64, V2Error> {
        let p = self.canonical(path)?;
        let missing = self.missing_dirs(&p)?;
        let exists = match self.nodes.get(&p).map(|n| &n.kind) {
            Some(Kind::Dir) => return Err(V2Error::IsDir { path: p }),
            Some(Kind::Leaf(_)) => true,
            None => false,
        };
        self.reserve(missing.len() + usize::from(!exists))?;
        let index = self.next_index()?;
        // Nothing can fail below: the store changes all at once or not at all.
        self.insert_dirs(&missing, index);
        match self.nodes.get_mut(&p) {
            Some(node) => {
                node.kind = Kind::Leaf(value.to_string());
                node.modified_index = index;
            }
            None => {
                self.nodes.insert(
                    p,
                    Node {
                        kind: Kind::Leaf(value.to_string()),
                        created_index: index,
                        modified_index: index,
                    },
                );
            }
        }
        self.index = index;
        Ok(index)
    }

    /// Creates a directory (and missing parents). Fails if `path` exists.
    pub fn create_dir(&mut self, path: &str) -> Result<u64, V2Error> {
        let p = self.canonical(path)?;
        if self.nodes.contains_key(&p) {
            return Err(V2Error::NodeExists { path: p });
        }
        let mut missing = self.missing_dirs(&p)?;
        missing.push(p);
        self.reserve(missing.len())?;
        let index = self.next_index()?;
        self.insert_dirs(&missing, index);
        self.index = index;
        Ok(index)
    }

    /// Creates a leaf under `dir` (created if missing) named by the new
    /// index, zero padded to 20 digits as etcd does, so names sort in
    /// creation order. Returns the new key's canonical path.
    pub fn create_in_order(&mut self, dir: &str, value: &str) -> Result<String, V2Error> {
        let d = self.canonical(dir)?;
        let mut missing = self.missing_dirs(&d)?;
        match self.nodes.get(&d).map(|n| &n.kind) {
            Some(Kind::Leaf(_)) => return Err(V2Error::NotDir { path: d }),
            Some(Kind::Dir) => {}
            None => missing.push(d.clone()),
        }
        let index = self.next_index()?;
        let key = path::join(&d, &format!("{index:020}"));
        // One more component than `d`, which passed the depth check.
        let key = self.canonical(&key)?;
        if self.nodes.contains_key(&key) {
            return Err(V2Error::NodeExists { path: key });
        }
        self.reserve(missing.len() + 1)?;
        self.insert_dirs(&missing, index);
        self.nodes.insert(
            key.clone(),
            Node {
                kind: Kind::Leaf(value.to_string()),
                created_index: index,
                modified_index: index,
            },
        );
        self.index = index;
        Ok(key)
    }

    /// Deletes a leaf or a directory. A non-empty directory needs
    /// `recursive`; an empty one may be deleted either way (etcd's `dir=true`
    /// delete). The root cannot be deleted. Returns the new store index.
    pub fn delete(&mut self, path: &str, recursive: bool) -> Result<u64, V2Error> {
        let p = self.canonical(path)?;
        if p == ROOT {
            return Err(V2Error::RootReadOnly);
        }
        let is_dir = match self.nodes.get(&p) {
            None => return Err(V2Error::NotFound { path: p }),
            Some(node) => node.kind == Kind::Dir,
        };
        let descendants = if is_dir {
            self.descendants(&p)
        } else {
            Vec::new()
        };
        if !descendants.is_empty() && !recursive {
            return Err(V2Error::DirNotEmpty { path: p });
        }
        let index = self.next_index()?;
        for key in descendants {
            self.nodes.remove(&key);
        }
        self.nodes.remove(&p);
        self.index = index;
        Ok(index)
    }

    /// A leaf's value (`None` for a directory, a missing node or a bad path).
    pub fn get(&self, path: &str) -> Option<String> {
        let p = self.canonical(path).ok()?;
        match &self.nodes.get(&p)?.kind {
            Kind::Leaf(v) => Some(v.clone()),
            Kind::Dir => None,
        }
    }

    /// The names of a directory's children, sorted.
    pub fn children(&self, dir: &str) -> Result<Vec<String>, V2Error> {
        let d = self.canonical(dir)?;
        match self.nodes.get(&d).map(|n| &n.kind) {
            None => return Err(V2Error::NotFound { path: d }),
            Some(Kind::Leaf(_)) => return Err(V2Error::NotDir { path: d }),
            Some(Kind::Dir) => {}
        }
        let prefix = path::descendant_prefix(&d);
        Ok(self
            .under(&prefix)
            .filter_map(|k| {
                let rest = &k[prefix.len()..];
                (!rest.contains('/')).then(|| rest.to_string())
            })
            .collect())
    }

    /// Whether a node (leaf or directory) exists at `path`.
    pub fn exists(&self, path: &str) -> bool {
        self.canonical(path)
            .is_ok_and(|p| self.nodes.contains_key(&p))
    }

    /// A node's kind and indexes.
    pub fn stat(&self, path: &str) -> Option<NodeStat> {
        let p = self.canonical(path).ok()?;
        let node = self.nodes.get(&p)?;
        Some(NodeStat {
            dir: node.kind == Kind::Dir,
            created_index: node.created_index,
            modified_index: node.modified_index,
        })
    }

    /// The store's state as a comparable value.
    pub fn dump(&self) -> V2Dump {
        let mut leaves = BTreeMap::new();
        let mut dirs = Vec::new();
        for (p, node) in &self.nodes {
            match &node.kind {
                Kind::Dir => dirs.push(p.clone()),
                Kind::Leaf(value) => {
                    leaves.insert(
                        p.clone(),
                        LeafDump {
                            value: value.clone(),
                            created_index: node.created_index,
                            modified_index: node.modified_index,
                        },
                    );
                }
            }
        }
        V2Dump {
            index: self.index,
            leaves,
            dirs,
        }
    }

    fn canonical(&self, p: &str) -> Result<String, V2Error> {
        path::normalise(p, self.limits.max_depth)
    }

    fn next_index(&self) -> Result<u64, V2Error> {
        self.index.checked_add(1).ok_or(V2Error::IndexOverflow)
    }

    fn reserve(&self, new_nodes: usize) -> Result<(), V2Error> {
        if self.nodes.len().saturating_add(new_nodes) > self.limits.max_nodes {
            return Err(V2Error::TooManyNodes {
                max: self.limits.max_nodes,
            });
        }
        Ok(())
    }

    /// The ancestors of `p` that do not exist yet (root first); an error if
    /// one of them is a leaf.
    fn missing_dirs(&self, p: &str) -> Result<Vec<String>, V2Error> {
        let mut missing = Vec::new();
        for a in path::ancestors(p) {
            match self.nodes.get(a).map(|n| &n.kind) {
                Some(Kind::Dir) => {}
                Some(Kind::Leaf(_)) => {
                    return Err(V2Error::NotDir {
                        path: a.to_string(),
                    });
                }
                None => missing.push(a.to_string()),
            }
        }
        Ok(missing)
    }

    fn insert_dirs(&mut self, dirs: &[String], index: u64) {
        for d in dirs {
            self.nodes.insert(d.clone(), Node::dir(index));
        }
    }

    /// Every strict descendant of directory `d`.
    fn descendants(&self, d: &str) -> Vec<String> {
        self.under(&path::descendant_prefix(d)).cloned().collect()
    }

    /// The keys that start with `prefix` (one contiguous range of the map:
    /// `"/a-b"` sorts between `"/a"` and `"/a/"`, so the range must start at
    /// the prefix, not at the directory), the root key itself excluded.
    fn under<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'s String> + 's {
        self.nodes
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(move |k| k.starts_with(prefix))
            .filter(|k| k.as_str() != ROOT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_store_has_root_and_index_zero() {
        let s = V2Store::new();
        assert_eq!(s.index(), 0);
        assert!(s.exists("/"));
        assert!(s.exists(""));
        assert_eq!(s.children("/").unwrap(), Vec::<String>::new());
        assert_eq!(s.dump().dirs, vec!["/".to_string()]);
    }

    #[test]
    fn index_increments_once_per_successful_modification() {
        let mut s = V2Store::new();
        assert_eq!(s.set("/0/members/8e9e05c52164694d/attributes", "{}"), Ok(1));
        assert_eq!(
            s.index(),
            1,
            "creating parents is part of the same modification"
        );
        assert_eq!(s.set("0/version", "3.5.0"), Ok(2));
        assert_eq!(s.create_dir("/1"), Ok(3));
        assert_eq!(
            s.create_in_order("/q", "job").unwrap(),
            "/q/00000000000000000004"
        );
        assert_eq!(s.index(), 4);
        assert_eq!(s.delete("/1", false), Ok(5));
        assert_eq!(s.delete("/0", true), Ok(6));
        assert_eq!(s.index(), 6);
    }

    #[test]
    fn failed_modifications_change_nothing() {
        let mut s = V2Store::new();
        s.set("/a/b", "1").unwrap();
        s.create_dir("/d").unwrap();
        let before = s.clone();
        let failures: Vec<V2Error> = vec![
            s.set("/a", "x").unwrap_err(),               // a dir
            s.set("/a/b/c", "x").unwrap_err(),           // parent is a leaf
            s.set("/", "x").unwrap_err(),                // root
            s.set("/a/../b", "x").unwrap_err(),          // bad path
            s.create_dir("/a").unwrap_err(),             // exists
            s.create_dir("/a/b/c").unwrap_err(),         // parent is a leaf
            s.create_dir("/").unwrap_err(),              // root exists
            s.create_in_order("/a/b", "x").unwrap_err(), // a leaf
            s.delete("/nope", true).unwrap_err(),        // missing
            s.delete("/a", false).unwrap_err(),          // not empty
            s.delete("/", true).unwrap_err(),            // root
            s.children("/a/b").unwrap_err(),             // a leaf
            s.children("/zz").unwrap_err(),              // missing
        ];
        assert_eq!(
            failures,
            vec![
                V2Error::IsDir { path: "/a".into() },
                V2Error::NotDir {
                    path: "/a/b".into()
                },
                V2Error::IsDir { path: "/".into() },
                V2Error::InvalidPath {
                    path: "/a/../b".into(),
                    reason: "`.` and `..` are not allowed"
                },
                V2Error::NodeExists { path: "/a".into() },
                V2Error::NotDir {
                    path: "/a/b".into()
                },
                V2Error::NodeExists { path: "/".into() },
                V2Error::NotDir {
                    path: "/a/b".into()
                },
                V2Error::NotFound {
                    path: "/nope".into()
                },
                V2Error::DirNotEmpty { path: "/a".into() },
                V2Error::RootReadOnly,
                V2Error::NotDir {
                    path: "/a/b".into()
                },
                V2Error::NotFound { path: "/zz".into() },
            ]
        );
        assert_eq!(s, before);
        assert_eq!(s.index(), 2);
    }

    #[test]
    fn set_get_and_paths_normalise() {
        let mut s = V2Store::new();
        s.set("a//b/", "1").unwrap();
        assert_eq!(s.get("/a/b"), Some("1".into()));
        assert_eq!(s.get("a/b"), Some("1".into()));
        assert_eq!(s.get("/a"), None, "a directory has no value");
        assert_eq!(s.get("/missing"), None);
        assert_eq!(s.get("/a/./b"), None);
        assert!(s.exists("/a") && s.exists("/a/b") && !s.exists("/a/c"));
        s.set("/a/c", "").unwrap();
        s.set("/a/a", "2").unwrap();
        assert_eq!(s.children("/a").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(s.children("").unwrap(), vec!["a"]);
    }

    #[test]
    fn children_are_only_direct_and_sorted() {
        let mut s = V2Store::new();
        for p in ["/x/b", "/x/a/deep/er", "/x-y/z", "/x/a-b", "/x0"] {
            s.set(p, "v").unwrap();
        }
        assert_eq!(s.children("/x").unwrap(), vec!["a", "a-b", "b"]);
        assert_eq!(s.children("/").unwrap(), vec!["x", "x-y", "x0"]);
        assert_eq!(s.children("/x/a").unwrap(), vec!["deep"]);
    }

    #[test]
    fn created_and_modified_index_rules() {
        let mut s = V2Store::new();
        s.set("/a/b/c", "1").unwrap(); // index 1: /a, /a/b, /a/b/c
        for p in ["/a", "/a/b", "/a/b/c"] {
            let st = s.stat(p).unwrap();
            assert_eq!((st.created_index, st.modified_index), (1, 1), "{p}");
        }
        s.set("/x", "0").unwrap(); // 2
        s.set("/a/b/c", "2").unwrap(); // 3: keeps created, bumps modified
        let st = s.stat("/a/b/c").unwrap();
        assert_eq!((st.dir, st.created_index, st.modified_index), (false, 1, 3));
        assert_eq!(s.get("/a/b/c"), Some("2".into()));
        // Parents are not touched by a child's modification.
        assert_eq!(s.stat("/a/b").unwrap().modified_index, 1);
        s.create_dir("/a/d").unwrap(); // 4
        let st = s.stat("/a/d").unwrap();
        assert_eq!((st.dir, st.created_index, st.modified_index), (true, 4, 4));
        // Delete and re-create: a new node, with new indexes.
        s.delete("/a/b/c", false).unwrap(); // 5
        s.set("/a/b/c", "3").unwrap(); // 6
        let st = s.stat("/a/b/c").unwrap();
        assert_eq!((st.created_index, st.modified_index), (6, 6));
        let dump = s.dump();
        assert_eq!(dump.index, 6);
        assert_eq!(
            dump.leaves["/a/b/c"],
            LeafDump {
                value: "3".into(),
                created_index: 6,
                modified_index: 6
            }
        );
        assert_eq!(dump.dirs, vec!["/", "/a", "/a/b", "/a/d"]);
    }

    #[test]
    fn delete_leaf_empty_dir_and_recursive() {
        let mut s = V2Store::new();
        s.set("/a/b/c", "1").unwrap();
        s.set("/a/b/d", "1").unwrap();
        s.set("/a-sibling", "1").unwrap();
        s.create_dir("/e").unwrap();
        assert_eq!(s.delete("/a/b/c", false), Ok(5));
        assert!(!s.exists("/a/b/c") && s.exists("/a/b/d"));
        assert_eq!(
            s.delete("/e", false),
            Ok(6),
            "an empty dir needs no recursive"
        );
        assert_eq!(
            s.delete("/a", false),
            Err(V2Error::DirNotEmpty { path: "/a".into() })
        );
        assert_eq!(s.delete("/a", true), Ok(7));
        assert!(!s.exists("/a") && !s.exists("/a/b") && !s.exists("/a/b/d"));
        assert!(
            s.exists("/a-sibling"),
            "a key sharing a name prefix survives"
        );
        assert_eq!(
            s.delete("/a-sibling", true),
            Ok(8),
            "recursive on a leaf is fine"
        );
        assert_eq!(s.children("/").unwrap(), Vec::<String>::new());
        assert_eq!(s.index(), 8);
    }

    #[test]
    fn create_in_order_names_by_index() {
        let mut s = V2Store::new();
        s.set("/other", "x").unwrap(); // 1
        let k1 = s.create_in_order("/queue", "a").unwrap(); // 2, creates /queue
        let k2 = s.create_in_order("queue/", "b").unwrap(); // 3
        assert_eq!(k1, "/queue/00000000000000000002");
        assert_eq!(k2, "/queue/00000000000000000003");
        assert_eq!(s.get(&k2), Some("b".into()));
        assert_eq!(s.stat("/queue").unwrap().created_index, 2);
        assert_eq!(
            s.children("/queue").unwrap(),
            vec!["00000000000000000002", "00000000000000000003"]
        );
        let root_key = s.create_in_order("/", "r").unwrap();
        assert_eq!(root_key, "/00000000000000000004");
        // A name already taken (set by hand) makes the creation fail cleanly.
        s.set("/queue/00000000000000000006", "taken").unwrap(); // 5
        assert_eq!(
            s.create_in_order("/queue", "c"),
            Err(V2Error::NodeExists {
                path: "/queue/00000000000000000006".into()
            })
        );
        assert_eq!(s.index(), 5);
    }

    #[test]
    fn limits_are_enforced_without_side_effects() {
        let mut s = V2Store::with_limits(V2Limits {
            max_depth: 3,
            max_nodes: 5,
        });
        assert!(matches!(
            s.set("/a/b/c/d", "x"),
            Err(V2Error::TooDeep { .. })
        ));
        s.set("/a/b/c", "x").unwrap(); // 4 nodes
        assert!(matches!(
            s.create_in_order("/a/b/c2", "x"),
            Err(V2Error::TooDeep { .. })
        ));
        assert_eq!(
            s.create_in_order("/a/q", "x"),
            Err(V2Error::TooManyNodes { max: 5 })
        );
        assert_eq!(s.index(), 1);
        assert_eq!(
            s.create_in_order("/a/b", "x").unwrap(),
            "/a/b/00000000000000000002"
        );
        assert_eq!(s.set("/z", "x"), Err(V2Error::TooManyNodes { max: 5 }));
        assert_eq!(s.set("/a/b/c", "y"), Ok(3), "overwriting adds no node");
        assert!(!s.exists("/z"));
    }

    #[test]
    fn index_overflow_is_an_error() {
        let mut s = V2Store::new();
        s.index = u64::MAX;
        assert_eq!(s.set("/a", "x"), Err(V2Error::IndexOverflow));
        assert!(!s.exists("/a"));
    }
}
