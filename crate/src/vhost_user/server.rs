//! The listener: a Unix socket path, one frontend at a time, served by the
//! protocol thread; after a disconnect or a dropped connection the backend is
//! reset and the next frontend is accepted.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vhost::vhost_user::BackendReqHandler;

use super::backend::Backend;
use super::device::Device;
use super::dispatch::Dispatch;
use super::error::{Error, Result};
use super::executor::{call, Executor};

/// State shared by the `Server` handle and its protocol thread.
struct Shared {
    path: PathBuf,
    stop: AtomicBool,
    listener: Arc<UnixListener>,
    /// A clone of the current connection, to shut it down from outside.
    conn: Mutex<Option<UnixStream>>,
}

impl Shared {
    fn conn(&self) -> std::sync::MutexGuard<'_, Option<UnixStream>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A listening vhost-user backend.
pub struct Server {
    path: PathBuf,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Binds `path`: refuses a path a live listener serves, or that is not a
/// socket; removes a stale socket file (nobody accepts on it).
pub fn bind(path: &Path) -> Result<UnixListener> {
    let fail = |reason: String| Error::Listen {
        path: path.to_owned(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
        Ok(m) if !m.file_type().is_socket() => {
            return Err(fail("the path exists and is not a socket".into()))
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(fail("a live listener is serving this socket".into())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)
                    .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
            }
            Err(e) => return Err(fail(format!("cannot check the existing socket: {e}"))),
        },
    }
    UnixListener::bind(path).map_err(|e| fail(e.to_string()))
}

impl Server {
    /// Listens on `path` and serves frontends on a new protocol thread; the
    /// backend state lives with `executor`'s owner.
    pub fn start<D, E>(path: impl AsRef<Path>, executor: Arc<E>) -> Result<Server>
    where
        D: Device + 'static,
        E: Executor<Backend<D>>,
    {
        let path = path.as_ref().to_owned();
        let listener = Arc::new(bind(&path)?);
        let ino = std::fs::metadata(&path).map(|m| m.ino()).ok();
        let shared = Arc::new(Shared {
            path: path.clone(),
            stop: AtomicBool::new(false),
            listener: listener.clone(),
            conn: Mutex::new(None),
        });
        let sh = shared.clone();
        let p = path.clone();
        let thread = std::thread::Builder::new()
            .name("vhost-user".into())
            .spawn(move || {
                serve::<D, E>(&sh, executor);
                // Remove the socket file if it is still ours.
                if ino.is_some() && std::fs::metadata(&p).map(|m| m.ino()).ok() == ino {
                    let _ = std::fs::remove_file(&p);
                }
            })
            .map_err(|e| Error::Listen {
                path: path.clone(),
                reason: format!("cannot start the protocol thread: {e}"),
            })?;
        Ok(Server {
            path,
            shared,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops listening and drops the current connection, without waiting:
    /// the protocol thread then resets the backend, calls `Device::closed`
    /// through the executor, removes the socket file and ends. Safe to call
    /// on the owner thread (it does not wait for the owner).
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // SAFETY: shutdown(2) on a socket the Arc keeps open; it wakes a
        // blocked accept(2), which then fails.
        unsafe { libc::shutdown(self.shared.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(c) = &*self.shared.conn() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Waits for the protocol thread to end (after `shutdown`). Do not call
    /// it on the owner thread while the protocol thread may wait for it.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Keeps signals for the threads that handle them (Node's): this thread's
/// blocking calls then never fail with EINTR.
fn block_signals() {
    // SAFETY: a zeroed sigset_t filled by sigfillset, then applied to this
    // thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The protocol thread.
fn serve<D, E>(shared: &Shared, executor: Arc<E>)
where
    D: Device + 'static,
    E: Executor<Backend<D>>,
{
    block_signals();
    let dispatch = Arc::new(Dispatch::<D, E>::new(executor.clone()));
    let ex: &dyn Executor<Backend<D>> = &*executor;
    while !shared.stop.load(Ordering::SeqCst) {
        let stream = match shared.listener.accept() {
            Ok((s, _)) => s,
            Err(_) if shared.stop.load(Ordering::SeqCst) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue
            }
            Err(e) => {
                // Out of fds or similar: say so, give the process a moment.
                let err = Error::Listen {
                    path: shared.path.clone(),
                    reason: format!("accept failed: {e}"),
                };
                ex.execute(Box::new(move |b| b.refused(&err)));
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        *shared.conn() = stream.try_clone().ok();
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        if call(ex, |b, r| {
            b.connected();
            r.send(())
        })
        .is_none()
        {
            break;
        }
        let reason = connection(BackendReqHandler::from_stream(stream, dispatch.clone()), ex);
        *shared.conn() = None;
        let owner_gone = matches!(reason, Some(Error::OwnerGone));
        let done = call(ex, move |b, r| {
            b.disconnected(reason.as_ref());
            r.send(())
        });
        if owner_gone || done.is_none() {
            break;
        }
    }
    ex.execute(Box::new(|b| b.closed()));
}

/// Serves one frontend until it leaves (`None`) or is dropped (the error).
fn connection<D, E>(
    mut handler: BackendReqHandler<Dispatch<D, E>>,
    ex: &dyn Executor<Backend<D>>,
) -> Option<Error>
where
    D: Device + 'static,
    E: Executor<Backend<D>>,
{
    use vhost::vhost_user::Error as V;
    loop {
        let e = match handler.handle_request() {
            Ok(()) => continue,
            Err(e) => e,
        };
        let e = match e {
            V::ReqHandlerError(io) if io.get_ref().is_some_and(|r| r.is::<Error>()) => {
                let mine = io
                    .into_inner()
                    .and_then(|b| b.downcast::<Error>().ok())
                    .map(|b| *b);
                match mine {
                    Some(err) if err.keeps_connection() => {
                        ex.execute(Box::new(move |b| b.refused(&err)));
                        continue;
                    }
                    other => return other.or(Some(Error::OwnerGone)),
                }
            }
            e => e,
        };
        return match e {
            // Closed between two messages: a normal goodbye.
            V::Disconnected => None,
            e => Some(Error::Protocol(e)),
        };
    }
}
