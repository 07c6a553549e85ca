//! `frontend*`: the package's vhost-user frontend (`vhost_user::frontend`)
//! for the JavaScript tests. Requests that wait for the backend run on the
//! frontend's thread (the backend under test runs on this same main thread),
//! so they return a ticket; `frontendResult` picks the answer up.

use std::path::PathBuf;
use std::sync::Arc;

use super::Ctx;
use crate::engine::{Error, Result};
use crate::napi::{Tagged, TypeTag, TypedArrayKind, Value};
use crate::vhost_user::frontend::{Answer, Request, Session};
use crate::vhost_user::mmap::SharedMapping;

struct FrontendHandle(Session);

impl Tagged for FrontendHandle {
    const TAG: TypeTag = TypeTag {
        lower: 0x7669_7274_696f_2d71,
        upper: 0x6672_6f6e_7400_0005,
    };
    const EXPECTED: &'static str = "a test frontend";
}

fn err(message: String) -> Error {
    Error::VhostUser {
        code: "VhostUserProtocol",
        message,
    }
}

/// `frontendStart(path, memSize, queues, viewSize = memSize) -> [frontend, ArrayBuffer over
/// the first viewSize bytes of guest RAM]` (the memfd is sparse: a large one costs nothing
/// until touched).
pub fn start(ctx: &Ctx) -> Result<Value> {
    let path = PathBuf::from(ctx.string_of(ctx.arg(0)));
    let size = ctx.uint_arg(1, "memSize", 1 << 40)?;
    let queues = ctx.uint_arg(2, "queues", 256)? as usize;
    let view = match ctx.is_nullish_arg(3)? {
        true => size,
        false => ctx.uint_arg(3, "viewSize", size)?,
    };
    let session = Session::start(path, size, queues).map_err(err)?;
    let mapping: Arc<SharedMapping> = Arc::clone(session.memory());
    let (ptr, len) = (mapping.host_ptr(), view as usize);
    // SAFETY: the mapping is at least `len` bytes (`viewSize <= memSize`) and stays mapped
    // while the Arc lives.
    let ab = unsafe { ctx.external_arraybuffer(ptr, len, mapping)? }
        .ok_or_else(|| err("external ArrayBuffers are not allowed here".into()))?;
    let handle = ctx.new_external(FrontendHandle(session))?;
    Ok(ctx.array(&[handle, ab])?)
}

fn regions(ctx: &Ctx, i: usize) -> Result<Vec<(u64, u64, u64)>> {
    let spec = ctx.arg(i);
    let n = ctx.array_len(spec, "regions")?;
    let mut out = Vec::new();
    for k in 0..n / 3 {
        let f = |j| -> Result<u64> { Ok(ctx.u64(ctx.element(spec, 3 * k + j)?, "regions")?) };
        out.push((f(0)?, f(1)?, f(2)?));
    }
    Ok(out)
}

/// `frontendRequest(frontend, op, a, b, c, d) -> ticket`; ops: 0 setup(features,
/// [guest, size, offset, ...]), 1 setMemTable(regions), 2 startVring(index, size,
/// base, [desc, avail, used]), 3 getVringBase(index), 4 enableVring(index, on),
/// 5 getConfig(offset, size), 6 setConfig(offset, Uint8Array), 7 disconnect, 8 timedKick(index)
/// (from the frontend's thread; answers the CLOCK_MONOTONIC time of the write).
pub fn request(ctx: &Ctx) -> Result<Value> {
    let fe = ctx.external_arg::<FrontendHandle>(0, "frontend")?;
    let req = match ctx.u32_arg(1, "op")? {
        0 => Request::Setup {
            features: ctx.u64_arg(2, "features")?,
            regions: regions(ctx, 3)?,
        },
        1 => Request::SetMemTable {
            regions: regions(ctx, 2)?,
        },
        2 => {
            let addrs = regions(ctx, 5)?;
            let &(desc, avail, used) = addrs
                .first()
                .ok_or_else(|| Error::range("addresses", "[desc, avail, used]"))?;
            Request::StartVring {
                index: ctx.u16_arg(2, "index")? as usize,
                size: ctx.u16_arg(3, "size")?,
                base: ctx.u16_arg(4, "base")?,
                desc,
                avail,
                used,
            }
        }
        3 => Request::GetVringBase {
            index: ctx.u16_arg(2, "index")? as usize,
        },
        4 => Request::EnableVring {
            index: ctx.u16_arg(2, "index")? as usize,
            enable: ctx.bool_arg(3, "enable")?,
        },
        5 => Request::GetConfig {
            offset: ctx.u32_arg(2, "offset")?,
            size: ctx.u32_arg(3, "size")?,
        },
        6 => {
            let ta = ctx.typed_array_arg(3, "data", TypedArrayKind::Uint8)?;
            let data = if ta.data.is_null() {
                Vec::new()
            } else {
                // SAFETY: V8's view of a live Uint8Array, copied during this call.
                unsafe { std::slice::from_raw_parts(ta.data, ta.byte_len) }.to_vec()
            };
            Request::SetConfig {
                offset: ctx.u32_arg(2, "offset")?,
                data,
            }
        }
        7 => Request::Disconnect,
        8 => Request::TimedKick {
            index: ctx.u16_arg(2, "index")? as usize,
        },
        op => return Err(Error::range("op", format!("unknown op {op}"))),
    };
    let ticket = fe.0.request(req).map_err(err)?;
    Ok(ctx.number(ticket as f64)?)
}

/// `frontendResult(frontend, ticket) -> undefined | [true, value] | [false, message]`.
pub fn result(ctx: &Ctx) -> Result<Value> {
    let fe = ctx.external_arg::<FrontendHandle>(0, "frontend")?;
    let ticket = ctx.uint_arg(1, "ticket", (1 << 53) - 1)?;
    let Some(r) = fe.0.result(ticket) else {
        return Ok(ctx.undefined()?);
    };
    let items = match r {
        Ok(Answer::Done) => [ctx.boolean(true)?, ctx.undefined()?],
        Ok(Answer::Value(v)) => [ctx.boolean(true)?, ctx.bigint_u64(v)?],
        Ok(Answer::Bytes(b)) => [ctx.boolean(true)?, ctx.buffer_copy(&b)?],
        Err(m) => [ctx.boolean(false)?, ctx.string(&m)?],
    };
    Ok(ctx.array(&items)?)
}

/// `frontendKick(frontend, index)`.
pub fn kick(ctx: &Ctx) -> Result<Value> {
    let fe = ctx.external_arg::<FrontendHandle>(0, "frontend")?;
    fe.0.kick(ctx.u16_arg(1, "index")? as usize).map_err(err)?;
    Ok(ctx.undefined()?)
}

/// `frontendCalls(frontend, index) -> interrupts since the last call`.
pub fn calls(ctx: &Ctx) -> Result<Value> {
    let fe = ctx.external_arg::<FrontendHandle>(0, "frontend")?;
    let n =
        fe.0.take_calls(ctx.u16_arg(1, "index")? as usize)
            .map_err(err)?;
    Ok(ctx.number(n as f64)?)
}
