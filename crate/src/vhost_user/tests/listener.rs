//! The socket path: live listeners, stale sockets, other files, shutdown.

use std::os::unix::net::UnixListener;

use super::support::*;
use crate::vhost_user::{Error, Server};

#[test]
fn a_live_listeners_path_is_refused() {
    let h = Harness::start("live", 1);
    match Server::start(&h.path, h.owner.clone()) {
        Err(e @ Error::Listen { .. }) => {
            assert!(e.to_string().contains("a live listener"), "{e}")
        }
        other => panic!("expected a Listen error, got {:?}", other.map(|_| ())),
    }
    // The first listener still serves.
    let (_fe, _) = super::frontend::negotiate(&h);
}

#[test]
fn a_stale_socket_is_replaced_and_other_files_are_left_alone() {
    let path = socket_path("stale");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let s = crate::vhost_user::server::bind(&path).unwrap();
    drop(s);
    std::fs::remove_file(&path).unwrap();

    std::fs::write(&path, b"not a socket").unwrap();
    let e = crate::vhost_user::server::bind(&path).unwrap_err();
    assert!(e.to_string().contains("is not a socket"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn shutdown_drops_the_frontend_closes_and_removes_the_socket() {
    let mut h = Harness::start("shutdown", 1);
    let (_fe, _) = super::frontend::negotiate(&h);
    let server = h.server.take().unwrap();
    server.shutdown();
    server.join();
    assert!(!h.path.exists());
    // `closed` reaches the owner after the protocol thread ended.
    h.wait_for("closed", |e| *e == Event::Closed);
    let ev = h.events();
    assert!(ev.contains(&Event::Disconnected(None)), "{ev:?}");
    assert_eq!(ev.last(), Some(&Event::Closed));
}

#[test]
fn a_second_frontend_waits_for_the_first_to_leave() {
    let h = Harness::start("second", 1);
    let (first, _) = super::frontend::negotiate(&h);
    let path = h.path.clone();
    let second = std::thread::spawn(move || {
        use vhost::VhostBackend;
        let fe = vhost::vhost_user::Frontend::connect(&path, 1).unwrap();
        fe.get_features().unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!second.is_finished(), "served while the first is connected");
    drop(first);
    assert_ne!(second.join().unwrap(), 0);
}
