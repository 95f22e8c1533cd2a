//! Routing of v2 writes: a v2 `set` on a membership key is a membership
//! change (etcd's applierV2 does the same), so it goes through the
//! membership writers and their v2/v3 split; any other key is v2 only.

use super::Stores;
use crate::membership::MembershipError;
use crate::proto::Response;
use crate::v2store::V2Error;
use serde::Deserialize;

const VERSION_KEY: &str = "/0/version";

#[derive(Deserialize)]
struct Attributes {
    name: String,
    #[serde(rename = "clientURLs")]
    client_urls: Vec<String>,
}

/// The member id of a `/0/members/<id>/attributes` key.
fn member_attributes_id(path: &str) -> Option<u64> {
    let rest = path.trim_start_matches('/').strip_prefix("0/members/")?;
    let (id, tail) = rest.split_once('/')?;
    if tail != "attributes" {
        return None;
    }
    u64::from_str_radix(id, 16).ok()
}

/// Records a plain v2 result in the response.
pub(super) fn result(r: Result<u64, V2Error>, response: &mut Response) {
    if let Err(e) = r {
        response.error = e.to_string();
    }
}

/// Applies a v2 set; returns the membership outcome if it was one.
pub(super) fn set(
    stores: &mut Stores,
    path: &str,
    value: &str,
    apply_v3: bool,
    response: &mut Response,
) -> Option<Result<(), MembershipError>> {
    let Stores {
        v2,
        backend,
        cluster,
        ..
    } = stores;
    if path.trim_start_matches('/') == VERSION_KEY.trim_start_matches('/') {
        return Some(cluster.set_version(v2, backend, value, apply_v3));
    }
    if let Some(id) = member_attributes_id(path) {
        return Some(match serde_json::from_str::<Attributes>(value) {
            Ok(a) => cluster.update_attributes(v2, backend, id, &a.name, &a.client_urls, apply_v3),
            Err(e) => {
                response.error = format!("malformed member attributes: {e}");
                Ok(())
            }
        });
    }
    result(v2.set(path, value), response);
    None
}
