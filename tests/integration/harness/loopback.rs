//! Servers on 127.0.0.1 as the tests that need no root reach them: a free
//! port to give one, and the status code of a raw HTTP/1.1 reply.

use std::net::TcpListener;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status code in a raw HTTP/1.1 reply (`HTTP/1.1 303 See Other...`).
pub fn status_code(reply: &str) -> Option<u16> {
    reply.split(' ').nth(1).and_then(|c| c.parse().ok())
}
