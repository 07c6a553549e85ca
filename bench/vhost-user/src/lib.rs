//! The pieces of `vu-loadgen` and `vu-blk-native` that are plain computation, kept apart from
//! the sockets and threads so that they are unit-tested: argument parsing, the data pattern the
//! load generator writes and verifies, latency percentiles, the virtio-blk wire constants and a
//! small random number generator.

pub mod args;
pub mod blk;
pub mod latency;
pub mod pattern;
pub mod rng;
