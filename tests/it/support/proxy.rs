//! A proxy between airgap and an engine's socket that records every
//! request line clients send: an export is a `GET …/images/get` (or
//! `…/images/NAME/get`) request, so a pack that exported would be seen.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::support::engine::TestEngine;

/// What one connection's client sent.
type Sent = Arc<Mutex<Vec<u8>>>;

/// A proxy to an engine's socket that keeps what clients sent.
pub struct EngineProxy {
    _dir: tempfile::TempDir,
    pub host: String,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl EngineProxy {
    pub fn start(engine: &TestEngine) -> Self {
        let target = PathBuf::from(engine.host.trim_start_matches("unix://"));
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("proxy.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let connections = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = UnixStream::connect(&target) else {
                    continue;
                };
                let record: Sent = Arc::default();
                connections.lock().unwrap().push(record.clone());
                let (mut client_in, mut server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = client_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        // Recorded before it is passed on, so it is there once the client has its answer.
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                        if server_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut server_in, mut client_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                    let _ = client_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Self {
            host: format!("unix://{}", socket.display()),
            _dir: dir,
            sent,
        }
    }

    /// Every request line clients sent so far.
    pub fn requests(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for record in self.sent.lock().unwrap().iter() {
            let bytes = record.lock().unwrap().clone();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            lines.extend(
                text.split("\r\n")
                    .filter(|l| {
                        ["GET ", "POST ", "HEAD ", "DELETE "]
                            .iter()
                            .any(|m| l.starts_with(m))
                    })
                    .map(str::to_owned),
            );
        }
        lines
    }

    /// The export requests (`docker save`) so far, decoded.
    pub fn exports(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|line| {
                let path = line.split(' ').nth(1).unwrap_or("");
                let path = path.split('?').next().unwrap_or("");
                path.contains("/images/") && path.ends_with("/get")
            })
            .map(|line| percent_decode(&line))
            .collect()
    }

    /// Forgets what was sent so far.
    pub fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
