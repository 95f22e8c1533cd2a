//! Key path normalisation: one canonical spelling per node, so the tree,
//! the snapshot JSON and the dump never disagree about which node a path is.

use super::V2Error;

/// The canonical path of the root directory.
pub const ROOT: &str = "/";

/// Normalises `path` to `/a/b/c`: the leading `/` is optional, repeated and
/// trailing `/` collapse, `.` and `..` are refused (a v2 key never means a
/// relative walk), and at most `max_depth` components are accepted (keeps
/// every walk over a path cheap and bounded).
pub fn normalise(path: &str, max_depth: usize) -> Result<String, V2Error> {
    let mut out = String::with_capacity(path.len() + 1);
    let mut depth = 0usize;
    for component in path.split('/').filter(|c| !c.is_empty()) {
        if component == "." || component == ".." {
            return Err(V2Error::InvalidPath {
                path: path.to_string(),
                reason: "`.` and `..` are not allowed",
            });
        }
        depth += 1;
        if depth > max_depth {
            return Err(V2Error::TooDeep {
                path: path.to_string(),
                max: max_depth,
            });
        }
        out.push('/');
        out.push_str(component);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// The parent of a canonical path (`None` for the root).
pub fn parent(path: &str) -> Option<&str> {
    if path == ROOT {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some(ROOT),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last component of a canonical path (`""` for the root).
pub fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// The canonical path of `name` inside directory `dir`.
pub fn join(dir: &str, name: &str) -> String {
    if dir == ROOT {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The prefix every descendant of `dir` starts with.
pub fn descendant_prefix(dir: &str) -> String {
    if dir == ROOT {
        ROOT.to_string()
    } else {
        format!("{dir}/")
    }
}

/// Every proper ancestor of a canonical path, root first.
pub fn ancestors(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut cur = parent(path);
    while let Some(p) = cur {
        out.push(p);
        cur = parent(p);
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_slashes() {
        assert_eq!(normalise("a/b", 8).unwrap(), "/a/b");
        assert_eq!(normalise("//a///b/", 8).unwrap(), "/a/b");
        assert_eq!(normalise("", 8).unwrap(), "/");
        assert_eq!(normalise("///", 8).unwrap(), "/");
        assert_eq!(
            normalise("/0/members/8e9e05c52164694d/attributes", 8).unwrap(),
            "/0/members/8e9e05c52164694d/attributes"
        );
    }

    #[test]
    fn refuses_dots_and_depth() {
        assert!(matches!(
            normalise("/a/../b", 8),
            Err(V2Error::InvalidPath { .. })
        ));
        assert!(matches!(
            normalise("./a", 8),
            Err(V2Error::InvalidPath { .. })
        ));
        assert_eq!(normalise("/a/.b/..c", 8).unwrap(), "/a/.b/..c");
        assert!(normalise("/a/b/c", 3).is_ok());
        assert!(matches!(
            normalise("/a/b/c/d", 3),
            Err(V2Error::TooDeep { max: 3, .. })
        ));
    }

    #[test]
    fn parent_name_join_ancestors() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(ancestors("/a/b/c"), vec!["/", "/a", "/a/b"]);
        assert_eq!(ancestors("/"), Vec::<&str>::new());
    }
}
