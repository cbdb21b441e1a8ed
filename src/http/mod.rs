//! What every HTTP server of the box shares: the portal, the dashboard
//! and the reference HQ receiver (`hq::receiver`) all listen, serve
//! connections, read bodies and answer through this module, so a limit
//! set here holds for all three.
//!
//! - `listen`: binding, and the bounded accept loop (at most N
//!   connections, a backoff on accept errors);
//! - `conn`: one HTTP/1 connection: the 16 KiB head cap, the 10 s to
//!   send a head, a bounded lifetime and graceful shutdown; the TLS
//!   handshake and server certificates (`tls`);
//! - `body`: reading a request body within a size and a time limit;
//! - `form`: `application/x-www-form-urlencoded` bodies and query
//!   strings;
//! - `reply`: answers: plain, JSON, redirects, `Retry-After`, and the
//!   security headers every page carries.
//!
//! Pages and their texts are `web`'s; routes are each server's own.

pub mod body;
pub mod conn;
pub mod form;
pub mod listen;
pub mod reply;
pub mod tls;

pub use conn::Conn;
pub use listen::{Acceptor, bind};

/// A request body any of the servers can read: hyper's `Incoming` on a
/// connection, `Full` in tests.
pub trait Body: hyper::body::Body<Data = bytes::Bytes, Error: Into<BoxError>> {}

impl<B> Body for B where B: hyper::body::Body<Data = bytes::Bytes, Error: Into<BoxError>> {}

/// The error of a body or a service, as hyper takes it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
