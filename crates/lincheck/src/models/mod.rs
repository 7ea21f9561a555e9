//! Models of ZooKeeper behaviour to check histories against.
//!
//! [`znode`] is a [`Model`](crate::Model) for the search; [`sequential`] is
//! a direct check, because a sequential create's result is a name the
//! server picks, which a search model would have to guess.

mod data;
pub mod sequential;
pub mod znode;

pub use data::Data;
