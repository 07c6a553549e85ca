//! `fileFallocate(fd, offset, length, op, async)` (Linux): engine::file's
//! fallocate(2) for JavaScript, run on the calling thread (`async` false) or
//! on libuv's threadpool, settling a Promise (`async` true).
//!
//! Arguments are checked here, through Node-API only: `fd` an integer number
//! from 0 to 2^31 - 1, `offset` and `length` safe integers or bigints with
//! `length >= 1` and `offset + length <= 2^63 - 1`, `op` 0 (punch a hole) or
//! 1 (zero the range); the testing build also takes 2 (panic, for the tests). Nothing is converted (no `valueOf`, no Proxy trap runs).
//!
//! The outcome is one number, which `src/file` turns into a result or an error:
//! - `>= 0`: the `engine::file::Method` used;
//! - `-1`: the operation panicked (a bug);
//! - `<= -8`: it failed: `-outcome >> 3` is the errno, `-outcome & 7` the
//!   `engine::file::Step` that failed.

use super::Ctx;
use crate::engine::file::{self, Failure, Method, Op, MAX_END};
use crate::engine::{Error, Result};
use crate::napi::{self, Env, Settled, Task, Value};

/// The outcome of a panicked operation.
const PANICKED: f64 = -1.0;

pub fn fallocate(ctx: &Ctx) -> Result<Value> {
    let fd = ctx.uint_arg(0, "fd", i32::MAX as u64)? as i32;
    let offset = ctx.uint_or_bigint_arg(1, "offset", MAX_END)?;
    let length = ctx.uint_or_bigint_arg(2, "length", MAX_END)?;
    if length == 0 || length > MAX_END - offset {
        return Err(Error::range(
            "length",
            format!(
                "it must be from 1 to 2 ** 63 - 1 - offset ({})",
                MAX_END - offset
            ),
        ));
    }
    let op = match ctx.uint_arg(3, "op", MAX_OP)? {
        0 => Op::PunchHole,
        1 => Op::ZeroRange,
        _ => return panic_for_testing(ctx),
    };
    let job = Fallocate {
        fd,
        op,
        offset,
        length,
    };
    if ctx.bool_arg(4, "async")? {
        Ok(ctx.spawn_promise("virtio-queue:fallocate", job)?)
    } else {
        let outcome = encode(file::fallocate(fd, op, offset, length));
        Ok(ctx.number(outcome)?)
    }
}

/// `op` 2, in the testing build only: panic, on the calling thread or (`async`)
/// in the threadpool task, to show that neither reaches Node.
#[cfg(feature = "testing")]
const MAX_OP: u64 = 2;
#[cfg(not(feature = "testing"))]
const MAX_OP: u64 = 1;

#[cfg(feature = "testing")]
fn panic_for_testing(ctx: &Ctx) -> Result<Value> {
    struct Panics;
    impl Task for Panics {
        type Output = std::result::Result<Method, Failure>;
        fn execute(&mut self) -> Self::Output {
            panic!("a panic in a fallocate task, for testing")
        }
        fn settle(env: Env, output: Option<Self::Output>) -> napi::Result<Settled> {
            Fallocate::settle(env, output)
        }
    }
    if ctx.bool_arg(4, "async")? {
        Ok(ctx.spawn_promise("virtio-queue:fallocate", Panics)?)
    } else {
        panic!("a panic in fallocate, for testing")
    }
}

#[cfg(not(feature = "testing"))]
fn panic_for_testing(_ctx: &Ctx) -> Result<Value> {
    unreachable!("op is at most MAX_OP (1) in the product build")
}

/// One fallocate call, for the threadpool.
struct Fallocate {
    fd: i32,
    op: Op,
    offset: u64,
    length: u64,
}

impl Task for Fallocate {
    type Output = std::result::Result<Method, Failure>;

    fn execute(&mut self) -> Self::Output {
        file::fallocate(self.fd, self.op, self.offset, self.length)
    }

    fn settle(env: Env, output: Option<Self::Output>) -> napi::Result<Settled> {
        let outcome = output.map_or(PANICKED, encode);
        Ok(Settled::Resolve(env.number(outcome)?))
    }
}

fn encode(result: std::result::Result<Method, Failure>) -> f64 {
    match result {
        Ok(method) => method as u8 as f64,
        Err(f) => -(((f.errno as i64) << 3 | f.step as i64) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::file::Step;

    #[test]
    fn outcomes_encode_as_documented() {
        assert_eq!(encode(Ok(Method::PunchHole)), 0.0);
        assert_eq!(encode(Ok(Method::WriteZeros)), 3.0);
        let f = Failure {
            errno: libc::ENOSPC,
            step: Step::Allocate,
        };
        let n = -encode(Err(f)) as i64;
        assert_eq!((n >> 3, n & 7), (libc::ENOSPC as i64, 2));
        assert!(n >= 8);
    }
}
