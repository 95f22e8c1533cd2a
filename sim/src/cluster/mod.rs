//! The simulated cluster: members and a client as madsim nodes, the world
//! they share, and what travels between them.

pub mod client;
pub mod member;
pub mod wire;
pub mod world;
