//! One repository per domain port.

pub(crate) mod members;
pub(crate) mod sessions;
