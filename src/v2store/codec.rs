//! `save` and `recover`: the v2 store as the data of a v2 snapshot.
//!
//! The encoding is a flat, sorted JSON object rather than etcd's nested node
//! tree, so that neither writing nor reading recurses per tree level:
//!
//! ```json
//! {"version":1,"index":7,"nodes":{"/":{"created_index":0,"dir":true,"modified_index":0},
//!  "/a":{"created_index":3,"dir":false,"modified_index":7,"value":"x"}}}
//! ```
//!
//! Same tree ⇒ same bytes: nodes come out of a `BTreeMap` in path order and
//! every struct serialises its fields in one fixed order. Parsing is
//! streaming and bounded: serde_json refuses nesting deeper than 128 levels
//! (this format needs 3), the node map stops at `max_nodes` entries before
//! allocating more, and nothing is allocated from a length field.

use super::V2Error;
use super::path::{self, ROOT};
use super::store::{Kind, Node, V2Limits, V2Store};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The encoding's version; bump it when the shape changes.
const VERSION: u32 = 1;

#[derive(Serialize)]
struct FileOut<'a> {
    version: u32,
    index: u64,
    nodes: BTreeMap<&'a str, NodeOut<'a>>,
}

// Fields in alphabetical order, so the JSON reads sorted.
#[derive(Serialize)]
struct NodeOut<'a> {
    created_index: u64,
    dir: bool,
    modified_index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeIn {
    created_index: u64,
    dir: bool,
    modified_index: u64,
    #[serde(default)]
    value: Option<String>,
}

struct FileIn {
    version: u32,
    index: u64,
    nodes: BTreeMap<String, NodeIn>,
}

impl V2Store {
    /// The store as stable, sorted JSON: equal trees give equal bytes.
    pub fn save(&self) -> Vec<u8> {
        let nodes = self
            .nodes
            .iter()
            .map(|(p, n)| {
                let value = match &n.kind {
                    Kind::Dir => None,
                    Kind::Leaf(v) => Some(v.as_str()),
                };
                let out = NodeOut {
                    created_index: n.created_index,
                    dir: value.is_none(),
                    modified_index: n.modified_index,
                    value,
                };
                (p.as_str(), out)
            })
            .collect();
        let file = FileOut {
            version: VERSION,
            index: self.index,
            nodes,
        };
        // Serialising integers, bools and string-keyed maps into a Vec has no
        // failure path in serde_json (no I/O, no non-string keys).
        serde_json::to_vec(&file).expect("serialising the v2 store into memory cannot fail")
    }

    /// Rebuilds a store from `save` output, with the default bounds.
    pub fn recover(bytes: &[u8]) -> Result<V2Store, V2Error> {
        Self::recover_with_limits(bytes, V2Limits::default())
    }

    /// Rebuilds a store from `save` output, refusing anything that is not a
    /// valid tree within `limits`.
    pub fn recover_with_limits(bytes: &[u8], limits: V2Limits) -> Result<V2Store, V2Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let file = FileSeed { limits }
            .deserialize(&mut de)
            .and_then(|f| de.end().map(|()| f))
            .map_err(|e| V2Error::Malformed {
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            })?;
        validate(file, limits)
    }
}

fn bad(path: &str, reason: impl Into<String>) -> V2Error {
    V2Error::BadShape {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Checks the tree invariants of `store.rs` and builds the store.
fn validate(file: FileIn, limits: V2Limits) -> Result<V2Store, V2Error> {
    if file.version != VERSION {
        return Err(bad(
            "",
            format!("unsupported version {} (expected {VERSION})", file.version),
        ));
    }
    match file.nodes.get(ROOT) {
        Some(root) if root.dir => {}
        Some(_) => return Err(bad(ROOT, "the root is not a directory")),
        None => return Err(bad(ROOT, "the root directory is missing")),
    }
    let mut nodes = BTreeMap::new();
    // Path order puts every parent before its children, so each parent is
    // already validated and inserted when its child is checked.
    for (p, n) in file.nodes {
        if path::normalise(&p, limits.max_depth)? != p {
            return Err(bad(&p, "path is not in canonical form"));
        }
        if n.dir == n.value.is_some() {
            return Err(bad(&p, "a directory must have no value, a leaf one value"));
        }
        if n.created_index > n.modified_index {
            return Err(bad(&p, "created_index is after modified_index"));
        }
        if n.modified_index > file.index {
            return Err(bad(&p, "modified_index is after the store index"));
        }
        if let Some(parent) = path::parent(&p) {
            match nodes.get(parent) {
                Some(Node {
                    kind: Kind::Dir,
                    created_index,
                    ..
                }) => {
                    if *created_index > n.created_index {
                        return Err(bad(&p, "created before its parent"));
                    }
                }
                Some(_) => return Err(bad(&p, "parent is not a directory")),
                None => return Err(bad(&p, "parent is missing")),
            }
        }
        let kind = match n.value {
            Some(v) => Kind::Leaf(v),
            None => Kind::Dir,
        };
        nodes.insert(
            p,
            Node {
                kind,
                created_index: n.created_index,
                modified_index: n.modified_index,
            },
        );
    }
    Ok(V2Store {
        nodes,
        index: file.index,
        limits,
    })
}

/// Parses the top-level object: exactly `version`, `index` and `nodes`.
struct FileSeed {
    limits: V2Limits,
}

impl<'de> DeserializeSeed<'de> for FileSeed {
    type Value = FileIn;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<FileIn, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed {
    type Value = FileIn;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a v2 store snapshot object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileIn, A::Error> {
        const FIELDS: &[&str] = &["version", "index", "nodes"];
        let (mut version, mut index, mut nodes) = (None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" if version.is_none() => version = Some(map.next_value()?),
                "index" if index.is_none() => index = Some(map.next_value()?),
                "nodes" if nodes.is_none() => {
                    nodes = Some(map.next_value_seed(NodesSeed {
                        max_nodes: self.limits.max_nodes,
                    })?)
                }
                "version" | "index" | "nodes" => {
                    return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                }
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
        }
        Ok(FileIn {
            version: version.ok_or_else(|| de::Error::missing_field("version"))?,
            index: index.ok_or_else(|| de::Error::missing_field("index"))?,
            nodes: nodes.ok_or_else(|| de::Error::missing_field("nodes"))?,
        })
    }
}

/// Parses the node map, stopping at `max_nodes` entries and refusing
/// duplicate paths (serde's default map would keep the last silently).
struct NodesSeed {
    max_nodes: usize,
}

impl<'de> DeserializeSeed<'de> for NodesSeed {
    type Value = BTreeMap<String, NodeIn>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NodesSeed {
    type Value = BTreeMap<String, NodeIn>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map from path to node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut nodes = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if nodes.len() >= self.max_nodes {
                return Err(de::Error::custom(format_args!(
                    "more than {} nodes",
                    self.max_nodes
                )));
            }
            if nodes.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate node {key:?}")));
            }
            let node: NodeIn = map.next_value()?;
            nodes.insert(key, node);
        }
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> V2Store {
        let mut s = V2Store::new();
        s.set("/0/members/8e9e05c52164694d/attributes", r#"{"name":"n1"}"#)
            .unwrap();
        s.set("/0/version", "3.5.0").unwrap();
        s.create_dir("/1").unwrap();
        s.create_in_order("/q", "a \"quoted\"\n value").unwrap();
        s.set("/0/version", "3.6.0").unwrap();
        s.delete("/1", false).unwrap();
        s
    }

    #[test]
    fn save_recover_round_trip() {
        let s = sample();
        let bytes = s.save();
        let r = V2Store::recover(&bytes).unwrap();
        assert_eq!(r, s);
        assert_eq!(r.index(), 6);
        assert_eq!(r.dump(), s.dump());
        assert_eq!(r.save(), bytes);
        assert_eq!(r.get("/0/version"), Some("3.6.0".into()));
        assert_eq!(r.stat("/0/version").unwrap().created_index, 2);
        // The recovered store goes on counting from the saved index.
        let mut r = r;
        assert_eq!(r.set("/x", "y"), Ok(7));
    }

    #[test]
    fn empty_store_round_trips() {
        let s = V2Store::new();
        let bytes = s.save();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"version":1,"index":0,"nodes":{"/":{"created_index":0,"dir":true,"modified_index":0}}}"#
        );
        assert_eq!(V2Store::recover(&bytes).unwrap(), s);
    }

    #[test]
    fn save_is_byte_stable_regardless_of_input_order() {
        // The same tree written with nodes in a different order and with
        // whitespace recovers to a store that saves to the canonical bytes.
        let shuffled = br#"{ "nodes": {
            "/b/c": {"value": "2", "modified_index": 3, "dir": false, "created_index": 2},
            "/a":   {"modified_index": 1, "created_index": 1, "dir": false, "value": "1"},
            "/b":   {"dir": true, "created_index": 2, "modified_index": 2},
            "/":    {"dir": true, "created_index": 0, "modified_index": 0} },
          "index": 3, "version": 1 }"#;
        let mut built = V2Store::new();
        built.set("/a", "1").unwrap();
        built.set("/b/c", "x").unwrap();
        built.set("/b/c", "2").unwrap();
        let recovered = V2Store::recover(shuffled).unwrap();
        assert_eq!(recovered.save(), built.save());
        assert_eq!(recovered, built);
    }

    #[test]
    fn recover_rejects_malformed_json() {
        for bytes in [
            &b""[..],
            b"{",
            b"null",
            b"[]",
            b"\xff\xfe",
            br#"{"version":1,"index":0}"#,
            br#"{"version":1,"index":-1,"nodes":{}}"#,
            br#"{"version":1,"index":0,"nodes":{},"extra":1}"#,
            br#"{"version":1,"index":0,"index":0,"nodes":{}}"#,
            br#"{"version":1,"index":0,"nodes":{"/":{"dir":true,"created_index":0}}}"#,
            br#"{"version":1,"index":0,"nodes":{"/":{"dir":true,"created_index":0,"modified_index":0,"x":1}}}"#,
            br#"{"version":1,"index":0,"nodes":{"/":{"dir":true,"created_index":0,"modified_index":0},"/":{"dir":true,"created_index":0,"modified_index":0}}}"#,
            br#"{"version":1,"index":0,"nodes":{"/":{"dir":true,"created_index":0,"modified_index":0}}} trailing"#,
        ] {
            let err = V2Store::recover(bytes).unwrap_err();
            assert!(
                matches!(err, V2Error::Malformed { .. }),
                "{:?}: {err:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn recover_rejects_bad_shapes() {
        let root = r#""/":{"created_index":0,"dir":true,"modified_index":0}"#;
        let cases = [
            (r#"{"version":2,"index":0,"nodes":{ROOT}}"#, "version"),
            (r#"{"version":1,"index":0,"nodes":{}}"#, "missing"),
            (
                r#"{"version":1,"index":0,"nodes":{"/":{"created_index":0,"dir":false,"modified_index":0,"value":"x"}}}"#,
                "root is not",
            ),
            (
                r#"{"version":1,"index":1,"nodes":{ROOT,"/a/b":{"created_index":1,"dir":false,"modified_index":1,"value":"x"}}}"#,
                "parent is missing",
            ),
            (
                r#"{"version":1,"index":1,"nodes":{ROOT,"/a":{"created_index":1,"dir":false,"modified_index":1,"value":"x"},"/a/b":{"created_index":1,"dir":false,"modified_index":1,"value":"x"}}}"#,
                "not a directory",
            ),
            (
                r#"{"version":1,"index":1,"nodes":{ROOT,"a":{"created_index":1,"dir":false,"modified_index":1,"value":"x"}}}"#,
                "canonical",
            ),
            (
                r#"{"version":1,"index":1,"nodes":{ROOT,"/a":{"created_index":1,"dir":true,"modified_index":1,"value":"x"}}}"#,
                "no value",
            ),
            (
                r#"{"version":1,"index":1,"nodes":{ROOT,"/a":{"created_index":1,"dir":false,"modified_index":1}}}"#,
                "no value",
            ),
            (
                r#"{"version":1,"index":5,"nodes":{ROOT,"/a":{"created_index":3,"dir":false,"modified_index":2,"value":"x"}}}"#,
                "created_index is after",
            ),
            (
                r#"{"version":1,"index":1,"nodes":{ROOT,"/a":{"created_index":1,"dir":false,"modified_index":2,"value":"x"}}}"#,
                "after the store index",
            ),
            (
                r#"{"version":1,"index":3,"nodes":{ROOT,"/a":{"created_index":3,"dir":true,"modified_index":3},"/a/b":{"created_index":2,"dir":false,"modified_index":2,"value":"x"}}}"#,
                "before its parent",
            ),
        ];
        for (json, want) in cases {
            let json = json.replace("ROOT", root);
            match V2Store::recover(json.as_bytes()) {
                Err(V2Error::BadShape { reason, .. }) => {
                    assert!(reason.contains(want), "{json}: {reason}")
                }
                other => panic!("{json}: {other:?}"),
            }
        }
        let dots = format!(
            r#"{{"version":1,"index":1,"nodes":{{{root},"/..":{{"created_index":1,"dir":false,"modified_index":1,"value":"x"}}}}}}"#
        );
        assert!(matches!(
            V2Store::recover(dots.as_bytes()),
            Err(V2Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn recover_rejects_deeply_nested_json_without_overflowing() {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let depth = 100_000;
            let json = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            assert!(matches!(
                V2Store::recover(json.as_bytes()),
                Err(V2Error::Malformed { .. })
            ));
        }
        // Deep nesting inside a field the format knows.
        let json = format!(
            r#"{{"version":1,"index":0,"nodes":{{"/":{{"created_index":{}1{}}}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            V2Store::recover(json.as_bytes()),
            Err(V2Error::Malformed { .. })
        ));
    }

    #[test]
    fn recover_rejects_trees_beyond_the_bounds() {
        let limits = V2Limits {
            max_depth: 3,
            max_nodes: 4,
        };
        let mut s = V2Store::with_limits(limits);
        s.set("/a/b/c", "x").unwrap();
        assert_eq!(V2Store::recover_with_limits(&s.save(), limits).unwrap(), s);

        // One level deeper than allowed.
        let mut deep = V2Store::new();
        deep.set("/a/b/c/d", "x").unwrap();
        let roomy = V2Limits {
            max_nodes: 100,
            ..limits
        };
        assert!(matches!(
            V2Store::recover_with_limits(&deep.save(), roomy),
            Err(V2Error::TooDeep { max: 3, .. })
        ));

        // One node more than allowed: refused while parsing.
        let mut wide = V2Store::new();
        for k in ["/a", "/b", "/c", "/d"] {
            wide.set(k, "x").unwrap();
        }
        match V2Store::recover_with_limits(&wide.save(), limits) {
            Err(V2Error::Malformed { reason, .. }) => assert!(reason.contains("more than 4")),
            other => panic!("{other:?}"),
        }
    }
}
