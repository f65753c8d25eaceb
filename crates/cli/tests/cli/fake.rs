//! Small fake servers on 127.0.0.1 for what moto cannot do: an endpoint
//! that accepts connections and never answers, and one that answers every
//! request the same way while recording which access key signed it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Accepts connections, reads whatever arrives, never answers. Its thread
/// lives as long as the test process.
pub struct Silent {
    pub url: String,
}

impl Silent {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                // Drain (so request bodies are sent), hold the connection open.
                std::thread::spawn(move || {
                    let mut sink = [0u8; 64 * 1024];
                    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                });
            }
        });
        Silent { url }
    }
}

/// A listener that never accepts, its queue filled by connections of its
/// own, so that a new connection's handshake never completes: a host that
/// does not answer at all (connect timeout), unlike [`Silent`] (which
/// accepts, then never replies: read timeout).
pub struct Unreachable {
    pub url: String,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl Unreachable {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        // The kernel completes handshakes until the accept queue is full;
        // the first connection that times out proves it is.
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(_) => break,
            }
            assert!(queued.len() < 10_000, "the accept queue never filled");
        }
        Unreachable {
            url: format!("http://{addr}"),
            _listener: listener,
            _queued: queued,
        }
    }
}

/// Answers every request with one canned response and records the access
/// key id of each request's `Authorization` header (SigV4 `Credential=`).
pub struct Recorder {
    pub url: String,
    keys: Arc<Mutex<Vec<String>>>,
}

/// A canned answer.
#[derive(Clone)]
pub struct Answer {
    pub status: &'static str,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: String,
}

impl Answer {
    /// An S3 XML error.
    pub fn s3_error(status: &'static str, code: &str, message: &str) -> Self {
        Answer {
            status,
            content_type: "application/xml",
            headers: Vec::new(),
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            ),
        }
    }

    /// A KMS (JSON 1.1) error.
    pub fn kms_error(code: &'static str, message: &str) -> Self {
        Answer {
            status: "400 Bad Request",
            content_type: "application/x-amz-json-1.1",
            headers: vec![("x-amzn-ErrorType", code)],
            body: format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
        }
    }
}

impl Recorder {
    pub fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&keys);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (answer, recorded) = (answer.clone(), Arc::clone(&recorded));
                std::thread::spawn(move || {
                    let _ = serve(stream, &answer, &recorded);
                });
            }
        });
        Recorder { url, keys }
    }

    /// The access keys seen so far, in order.
    pub fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, answer: &Answer, keys: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            }
            if name.eq_ignore_ascii_case("authorization") {
                if let Some(rest) = value.split("Credential=").nth(1) {
                    let key = rest.split('/').next().unwrap_or_default();
                    keys.lock().unwrap().push(key.to_owned());
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut head = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            answer.status,
            answer.content_type,
            answer.body.len()
        );
        for (name, value) in &answer.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(answer.body.as_bytes())?;
        writer.flush()?;
    }
}

/// Waits for `child` at most `limit`; kills it and fails the test if it is
/// still running then (a hang).
pub fn finishes_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {limit:?} (killed)\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends signal `name` (INT, TERM) to `pid`.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
