//! The addon's one error type. Pure Rust: how each variant is thrown in
//! JavaScript lives in `js::throw`.

use std::fmt;

/// Everything that can go wrong in a call from JavaScript.
#[derive(Debug)]
pub enum Error {
    /// An argument has the wrong JavaScript type (thrown as `TypeError`).
    ArgType {
        name: &'static str,
        expected: &'static str,
    },
    /// An argument has the right type but an unusable value (thrown as `RangeError`).
    ArgRange { name: &'static str, reason: String },
    /// The virtio-queue crate reported an error; the code is the variant's name.
    Queue(virtio_queue::Error),
    /// Entry `index` of a batch failed; the entries before it took effect.
    BatchEntry {
        index: usize,
        source: virtio_queue::Error,
    },
    /// A guest memory access failed.
    Memory(vm_memory::GuestMemoryError),
    /// A chain's buffer is not in guest memory (thrown with code `InvalidChain`).
    NotInMemory(String),
    /// A guest memory layout was rejected (overlap, empty region, misalignment...).
    InvalidRegion(String),
    /// A buffer backing guest memory no longer holds its region: detached
    /// (transferred), or resized below it, after it was mapped.
    Detached { region: usize },
    /// An object was used while it runs an operation on another thread.
    Busy(&'static str),
    /// Guest memory region `region` is over an ArrayBuffer, which can be detached
    /// (and its memory freed elsewhere) while another thread uses it.
    DetachableMemory { region: usize },
    /// A Rust panic, caught at the Node-API boundary.
    Panic(String),
    /// A Node-API call failed with this status; usually a JavaScript exception is already pending.
    NodeApi(i32),
    /// A vhost-user backend error: its code (`VhostUserListen`, ...) and message.
    VhostUser { code: &'static str, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn range(name: &'static str, reason: impl Into<String>) -> Self {
        Error::ArgRange {
            name,
            reason: reason.into(),
        }
    }

    /// The `code` property of the JavaScript error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::ArgType { .. } => "ERR_INVALID_ARG_TYPE",
            Error::ArgRange { .. } => "ERR_OUT_OF_RANGE",
            Error::Queue(e) | Error::BatchEntry { source: e, .. } => queue_error_code(e),
            Error::Memory(_) => "GuestMemory",
            Error::NotInMemory(_) => "InvalidChain",
            Error::InvalidRegion(_) => "InvalidRegion",
            Error::Detached { .. } => "DetachedBuffer",
            Error::Busy(_) => "Busy",
            Error::DetachableMemory { .. } => "DetachableMemory",
            Error::Panic(_) => "Panic",
            Error::NodeApi(_) => "NodeApi",
            Error::VhostUser { code, .. } => code,
        }
    }
}

/// The name of a virtio-queue error variant, used as the JavaScript `code`.
pub fn queue_error_code(e: &virtio_queue::Error) -> &'static str {
    use virtio_queue::Error as E;
    match e {
        E::AddressOverflow => "AddressOverflow",
        E::GuestMemory(_) => "GuestMemory",
        E::InvalidIndirectDescriptor => "InvalidIndirectDescriptor",
        E::InvalidIndirectDescriptorTable => "InvalidIndirectDescriptorTable",
        E::InvalidChain => "InvalidChain",
        E::InvalidDescriptorIndex => "InvalidDescriptorIndex",
        E::InvalidMaxSize => "InvalidMaxSize",
        E::InvalidSize => "InvalidSize",
        E::InvalidDescTableAlign => "InvalidDescTableAlign",
        E::InvalidAvailRingAlign => "InvalidAvailRingAlign",
        E::InvalidUsedRingAlign => "InvalidUsedRingAlign",
        E::InvalidAvailRingIndex => "InvalidAvailRingIndex",
        E::QueueNotReady => "QueueNotReady",
        E::VolatileMemoryError(_) => "VolatileMemoryError",
        E::DescriptorChainOverflow => "DescriptorChainOverflow",
        E::FindMemoryRegion => "FindMemoryRegion",
        E::GuestMemoryError(_) => "GuestMemoryError",
        E::SplitOutOfBounds(_) => "SplitOutOfBounds",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ArgType { name, expected } => {
                write!(f, "The \"{name}\" argument must be {expected}")
            }
            Error::ArgRange { name, reason } => {
                write!(f, "The \"{name}\" argument is out of range: {reason}")
            }
            Error::Queue(e) => write!(f, "{e}"),
            Error::BatchEntry { index, source } => {
                write!(
                    f,
                    "used entry {index} of the batch: {source} (the entries before it were added)"
                )
            }
            Error::Memory(e) => write!(f, "guest memory access failed: {e}"),
            Error::NotInMemory(msg) | Error::InvalidRegion(msg) => write!(f, "{msg}"),
            Error::Detached { region } => write!(
                f,
                "the ArrayBuffer backing guest memory region {region} was detached (transferred) \
                 or resized below the region; the memory is no longer usable"
            ),
            Error::Busy(what) => write!(f, "{what}"),
            Error::DetachableMemory { region } => write!(
                f,
                "guest memory region {region} is over an ArrayBuffer, which can be detached \
                 (transferred, and its memory freed elsewhere) while the threadpool uses it: \
                 FileIoBatch needs memory that cannot go away under it. Use GuestMemory.fromBuffers \
                 over SharedArrayBuffers, or vhost-user memory; or the synchronous \
                 ChainBatch.readFromFile/writeToFile"
            ),
            Error::Panic(msg) => write!(
                f,
                "internal error (Rust panic caught at the Node-API boundary): {msg}"
            ),
            Error::NodeApi(status) => write!(f, "a Node-API call failed with status {status}"),
            Error::VhostUser { message, .. } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Queue(e) | Error::BatchEntry { source: e, .. } => Some(e),
            Error::Memory(e) => Some(e),
            _ => None,
        }
    }
}

impl From<virtio_queue::Error> for Error {
    fn from(e: virtio_queue::Error) -> Self {
        Error::Queue(e)
    }
}

impl From<vm_memory::GuestMemoryError> for Error {
    fn from(e: vm_memory::GuestMemoryError) -> Self {
        Error::Memory(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_the_crate_variants() {
        assert_eq!(
            Error::from(virtio_queue::Error::InvalidSize).code(),
            "InvalidSize"
        );
        assert_eq!(
            Error::from(virtio_queue::Error::QueueNotReady).code(),
            "QueueNotReady"
        );
        assert_eq!(Error::range("size", "too big").code(), "ERR_OUT_OF_RANGE");
        let e = Error::from(virtio_queue::Error::InvalidSize);
        assert!(std::error::Error::source(&e).is_some());
        assert!(Error::Detached { region: 2 }
            .to_string()
            .contains("region 2"));
    }
}
