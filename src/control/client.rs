//! The `storegate ctl` end of the control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{Reply, Request};

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(
        "cannot reach storegate at {path}: {source} (is the daemon running, and are you root?)"
    )]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("unreadable answer from the daemon: {0}")]
    Answer(String),
}

/// Sends one request and waits for its answer.
pub fn call(socket: &Path, req: &Request) -> Result<Reply, CtlError> {
    let stream = UnixStream::connect(socket).map_err(|source| CtlError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_vec(req).map_err(|e| CtlError::Answer(e.to_string()))?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    serde_json::from_str(answer.trim()).map_err(|e| CtlError::Answer(e.to_string()))
}
