//! The vhost-user core's one error type.
//!
//! A request the backend refuses (`Refused`) leaves the connection up: the
//! frontend gets the protocol's error reply when it asked for one
//! (`REPLY_ACK`). Every other error ends the connection: the message stream can
//! no longer be trusted, or the frontend waits for a reply the protocol has no
//! error form for.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong between a frontend and this backend.
#[derive(Debug)]
pub enum Error {
    /// The request was refused; the backend's state is unchanged and the
    /// connection stays up.
    Refused {
        request: &'static str,
        reason: String,
    },
    /// A request that must be answered with a value was refused; vhost-user
    /// has no error reply for it, so the connection is dropped.
    NoReply {
        request: &'static str,
        reason: String,
    },
    /// The vhost crate rejected the message stream (malformed header or body,
    /// wrong size, unknown request, missing fds...): the connection is dropped.
    Protocol(vhost::vhost_user::Error),
    /// The thread that owns the backend state stopped taking work.
    OwnerGone,
    /// The socket path cannot be listened on.
    Listen { path: PathBuf, reason: String },
    /// The device's parameters are unusable (queue count, queue size).
    Device(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn refused(request: &'static str, reason: impl Into<String>) -> Self {
        Error::Refused {
            request,
            reason: reason.into(),
        }
    }

    /// The `code` the JavaScript glue gives this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Refused { .. } => "VhostUserRefused",
            Error::NoReply { .. } => "VhostUserNoReply",
            Error::Protocol(_) => "VhostUserProtocol",
            Error::OwnerGone => "VhostUserOwnerGone",
            Error::Listen { .. } => "VhostUserListen",
            Error::Device(_) => "VhostUserDevice",
        }
    }

    /// Whether the connection survives this error.
    pub fn keeps_connection(&self) -> bool {
        matches!(self, Error::Refused { .. })
    }

    /// The same refusal, for a request whose reply carries a value: fatal.
    pub(crate) fn into_no_reply(self) -> Self {
        match self {
            Error::Refused { request, reason } => Error::NoReply { request, reason },
            other => other,
        }
    }

    /// The error this crate put into a vhost error with `into_vhost`, if any.
    #[cfg(test)]
    pub(crate) fn from_vhost(e: &vhost::vhost_user::Error) -> Option<&Error> {
        match e {
            vhost::vhost_user::Error::ReqHandlerError(io) => io.get_ref()?.downcast_ref(),
            _ => None,
        }
    }

    /// Wraps this error for the vhost crate's request dispatcher, which sends
    /// the error acknowledgement (when asked for) and hands it back to the
    /// connection loop.
    pub(crate) fn into_vhost(self) -> vhost::vhost_user::Error {
        vhost::vhost_user::Error::ReqHandlerError(io::Error::other(self))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused { request, reason } => write!(f, "{request} refused: {reason}"),
            Error::NoReply { request, reason } => write!(
                f,
                "{request} refused: {reason} (the request needs a value in its reply, so the connection is dropped)"
            ),
            Error::Protocol(e) => write!(f, "vhost-user protocol error: {e}; connection dropped"),
            Error::OwnerGone => write!(
                f,
                "the thread owning the backend state stopped taking work; connection dropped"
            ),
            Error::Listen { path, reason } => {
                write!(f, "cannot listen on {}: {reason}", path.display())
            }
            Error::Device(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_survive_the_round_trip_through_vhost() {
        let e = Error::refused("SET_VRING_NUM", "size 3 is not a power of two").into_vhost();
        let back = Error::from_vhost(&e).unwrap();
        assert!(back.keeps_connection());
        assert_eq!(back.code(), "VhostUserRefused");
        assert_eq!(
            back.to_string(),
            "SET_VRING_NUM refused: size 3 is not a power of two"
        );
        let fatal = Error::refused("GET_VRING_BASE", "no such vring").into_no_reply();
        assert!(!fatal.keeps_connection());
        assert!(Error::from_vhost(&vhost::vhost_user::Error::InvalidMessage).is_none());
    }
}
