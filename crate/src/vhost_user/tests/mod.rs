//! Cargo tests of the vhost-user core: a test device on an owner thread, a
//! listening `Server`, driven by vhost's own `Frontend` (as QEMU would) and by
//! a hostile frontend sending raw protocol bytes.

mod frontend;
mod hostile;
mod listener;
mod raw;
mod support;
