//! The simulated cluster: members and a client as madsim nodes, the world
//! they share, and what travels between them.

mod boot;
pub mod client;
pub mod history;
pub mod links;
pub mod member;
pub mod member_step;
pub mod slot;
pub mod wire;
pub mod world;
