//! A client history as recorded: each operation with its call, the times it
//! was invoked and returned, and the response it got (none: indeterminate).

use replica::proto::{RangeRequest, Request, Response};

/// A point in the run: `seq` orders every invoke and return of the run
/// (the real-time order the checker relies on), `us` is the virtual time
/// in microseconds (for the picture).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    pub seq: u64,
    pub us: u64,
}

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A request through the log (writes, txns, compactions; v2 and
    /// membership requests are recorded too and ignored by the model).
    Write(Request),
    /// A range read: linearizable (ReadIndex) or serializable (local).
    Read {
        id: u64,
        range: RangeRequest,
        serializable: bool,
    },
}

impl Call {
    pub fn id(&self) -> u64 {
        match self {
            Call::Write(r) => r.id,
            Call::Read { id, .. } => *id,
        }
    }
}

/// One client operation.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The client session that issued it.
    pub client: u32,
    pub call: Call,
    pub invoke: Instant,
    /// When the answer arrived; `None`: the session gave up, so the
    /// operation may or may not have taken effect (indeterminate).
    pub returned: Option<Instant>,
    pub response: Option<Response>,
    /// The member whose answer it is.
    pub served_by: Option<u64>,
}

impl Recorded {
    pub fn is_indeterminate(&self) -> bool {
        self.response.is_none()
    }
}
