//! What travels over the simulated network.

use raft::eraftpb::Message;
use replica::proto::{ConfChangeRequest, RangeRequest, Request, Response};

/// The port every member listens on.
pub const PORT: u16 = 2380;
/// The one message tag used.
pub const TAG: u64 = 1;

/// A message between members or between the client and a member.
#[derive(Debug, Clone)]
pub enum Wire {
    /// Raft traffic between members.
    Raft(Message),
    /// A client request (sent to any member; only the leader proposes).
    Request(Request),
    /// A membership change (only the leader proposes).
    ConfChange(ConfChangeRequest),
    /// A range read `id`. A serializable one is answered at once from the
    /// receiving member's applied state; a linearizable one goes through
    /// raft's ReadIndex on the receiving member (any member with a leader),
    /// and is answered once that member has applied up to the read index.
    Read {
        id: u64,
        range: RangeRequest,
        serializable: bool,
    },
    /// The result of an applied request, from the member that proposed it.
    Response(Response),
    /// The member is not the leader; `leader` is its guess (0 = unknown).
    NotLeader { request_id: u64, leader: u64 },
}

/// The simulated IP of member `id` (the client is `10.0.1.1`).
pub fn member_ip(id: u64) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, id as u8))
}

pub fn member_addr(id: u64) -> std::net::SocketAddr {
    std::net::SocketAddr::new(member_ip(id), PORT)
}

/// The member at `addr`, if it is a member's address.
pub fn member_of(addr: std::net::SocketAddr) -> Option<u64> {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.octets()[..3] == [10, 0, 0] => Some(ip.octets()[3].into()),
        _ => None,
    }
}

/// The simulated IP of the client node.
pub fn client_ip() -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, 1))
}

/// The address of client session `session`.
pub fn client_addr(session: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::new(client_ip(), PORT + session)
}
