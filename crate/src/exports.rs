//! Module registration: the table of exported functions.

use crate::engine::{batch, memory, Error, Result};
use crate::js::state::Instance;
use crate::js::{call_area, memory as memory_js, queue, Body, Ctx};
use crate::napi::{napi_env, napi_value, register, Env, ErrorClass, Value, ValueType};

const FUNCTIONS: &[(&str, Body)] = &[
    ("init", init),
    ("memoryCreate", memory_js::memory_create),
    ("queueNew", queue::queue_new),
    ("queueFromState", queue::queue_from_state),
    ("queueState", queue::queue_state),
    ("isValid", queue::is_valid),
    ("reset", queue::reset),
    ("maxSize", queue::max_size),
    ("size", queue::size),
    ("setSize", queue::set_size),
    ("ready", queue::ready),
    ("setReady", queue::set_ready),
    ("setDescTableAddress", queue::set_desc_table_address),
    ("setAvailRingAddress", queue::set_avail_ring_address),
    ("setUsedRingAddress", queue::set_used_ring_address),
    ("setEventIdx", queue::set_event_idx),
    ("eventIdxEnabled", queue::event_idx_enabled),
    ("availIdx", queue::avail_idx),
    ("usedIdx", queue::used_idx),
    ("addUsed", queue::add_used),
    ("addUsedArea", queue::add_used_area),
    ("callArea", call_area::expose),
    ("enableNotification", queue::enable_notification),
    ("disableNotification", queue::disable_notification),
    ("needsNotification", queue::needs_notification),
    ("nextAvail", queue::next_avail),
    ("nextUsed", queue::next_used),
    ("setNextAvail", queue::set_next_avail),
    ("setNextUsed", queue::set_next_used),
    ("goToPreviousPosition", queue::go_to_previous_position),
    ("popChains", queue::pop_chains),
    ("addUsedBatch", queue::add_used_batch),
    ("constants", constants),
];

/// The vhost-user backend's exports (Linux only: elsewhere the TypeScript
/// layer finds them missing and `listen()` rejects).
#[cfg(target_os = "linux")]
const VHOST_USER_FUNCTIONS: &[(&str, Body)] = &[
    ("vhostUserStart", crate::js::vhost_user::start),
    ("vhostUserClose", crate::js::vhost_user::close),
    (
        "vhostUserCompleteStop",
        crate::js::vhost_user::complete_stop,
    ),
    ("vhostUserNotify", crate::js::vhost_user::notify),
];
#[cfg(not(target_os = "linux"))]
const VHOST_USER_FUNCTIONS: &[(&str, Body)] = &[];

/// System calls on files: fallocate(2) (`virtio-queue/file`) and preadv/pwritev
/// on guest memory (`Writer.readFromFile`, `Reader.writeToFile`, and queued for
/// the threadpool by `FileIoBatch`). Linux only:
/// elsewhere the TypeScript layer finds them missing and throws a `SystemError`
/// with code `ENOSYS`.
#[cfg(target_os = "linux")]
const FILE_FUNCTIONS: &[(&str, Body)] = &[
    ("fileFallocate", crate::js::file::fallocate),
    ("chainFileIo", crate::js::file_io::chain_file_io),
    ("fileIoBatchNew", crate::js::file_io_batch::new),
    ("fileIoBatchQueue", crate::js::file_io_batch::queue),
    ("fileIoBatchDatasync", crate::js::file_io_batch::datasync),
    ("fileIoBatchClear", crate::js::file_io_batch::clear),
    (
        "fileIoBatchCheckMemory",
        crate::js::file_io_batch::check_memory,
    ),
    ("fileIoBatchRun", crate::js::file_io_batch::run),
];
#[cfg(not(target_os = "linux"))]
const FILE_FUNCTIONS: &[(&str, Body)] = &[];

/// Exports of the `testing` build only (tests and benchmark).
#[cfg(feature = "testing")]
const TESTING_FUNCTIONS: &[(&str, Body)] = &[
    ("benchNative", crate::js::testing::bench_native),
    ("forcePanicForTesting", crate::js::testing::force_panic),
    #[cfg(target_os = "linux")]
    ("frontendStart", crate::js::testing::frontend::start),
    #[cfg(target_os = "linux")]
    ("frontendRequest", crate::js::testing::frontend::request),
    #[cfg(target_os = "linux")]
    ("frontendResult", crate::js::testing::frontend::result),
    #[cfg(target_os = "linux")]
    ("frontendKick", crate::js::testing::frontend::kick),
    #[cfg(target_os = "linux")]
    ("frontendCalls", crate::js::testing::frontend::calls),
];
#[cfg(not(feature = "testing"))]
const TESTING_FUNCTIONS: &[(&str, Body)] = &[];

/// `init(VirtioQueueError)`: the class errors are thrown as in this environment.
fn init(ctx: &Ctx) -> Result<Value> {
    let class = ctx.arg(0);
    if ctx.type_of(class)? != ValueType::Function {
        return Err(Error::ArgType {
            name: "errorClass",
            expected: "a class",
        });
    }
    ctx.state().set_error_class(ctx.env(), class)?;
    Ok(ctx.undefined()?)
}

/// `constants()`: `[pageSize, addressLimit, batch header words, chain words, descriptor words, state words]`.
fn constants(ctx: &Ctx) -> Result<Value> {
    let values = [
        memory::PAGE_SIZE as f64,
        memory::ADDRESS_LIMIT as f64,
        batch::HEADER_WORDS as f64,
        batch::CHAIN_WORDS as f64,
        batch::DESC_WORDS as f64,
        queue::STATE_WORDS as f64,
    ];
    let items = values
        .iter()
        .map(|v| ctx.number(*v))
        .collect::<crate::napi::Result<Vec<_>>>()?;
    Ok(ctx.array(&items)?)
}

/// Node's module entry point, called once per environment (main thread and each worker).
///
/// # Safety
/// Called by Node with a valid environment and exports object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let registered = std::panic::catch_unwind(|| {
        let functions: Vec<(&'static str, Body)> = FUNCTIONS
            .iter()
            .chain(VHOST_USER_FUNCTIONS)
            .chain(FILE_FUNCTIONS)
            .chain(TESTING_FUNCTIONS)
            .copied()
            .collect();
        // SAFETY: `env` and `exports` come from Node's module registration.
        unsafe { register(env, exports, Instance::default(), &functions) }
    });
    // SAFETY: `env` is the registering environment.
    let env = unsafe { Env::from_raw(env) };
    match registered {
        Ok(Ok(())) => exports,
        Ok(Err(e)) => {
            let _ = e.throw(env);
            std::ptr::null_mut()
        }
        Err(_) => {
            // No error class is registered yet: a plain Error with the addon's code.
            let e = Error::Panic("during module registration".into());
            let _ = env.throw_error(ErrorClass::Error, e.code(), &e.to_string());
            std::ptr::null_mut()
        }
    }
}

/// The Node-API version this addon is built against.
#[unsafe(no_mangle)]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    8
}
