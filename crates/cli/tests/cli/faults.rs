//! Faults between atrest and S3/KMS: a small HTTP proxy on 127.0.0.1 sits
//! between the binary (`AWS_ENDPOINT_URL` points at it) and moto, and breaks
//! chosen requests: HTTP 500, 503 SlowDown, a connection reset in the middle
//! of a response body, a body cut short under the right Content-Length, KMS
//! ThrottlingException.
//!
//! For every fault atrest must either complete correctly (byte-identical
//! round trip) or fail with a clear error and a non-zero status: never a
//! wrong plaintext, never a partial output file, never an orphaned multipart
//! upload. The SDK retries transient errors (3 attempts by default), so a
//! fault on the first attempt only must not fail the command.
//!
//! The proxy uses blocking std sockets (tokio only to reset a connection),
//! one thread per connection, and
//! closes every connection after one response (`Connection: close`), which
//! keeps its HTTP handling small: each request goes to moto on a fresh
//! connection and its response is read whole before the rule is applied.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::harness::*;

/// Which requests a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Any KMS request (`X-Amz-Target: TrentService.*`).
    Kms,
    /// S3 PutObject (a PUT without `uploadId`).
    PutObject,
    /// S3 UploadPart.
    UploadPart,
    /// S3 GetObject of a key, whole or from byte 0 (atrest's first GET).
    GetObject,
    /// S3 GetObject of a range starting after byte 0 (atrest's streams).
    GetLaterRange,
    /// S3 CreateMultipartUpload (a POST with `uploads`).
    CreateMultipartUpload,
    /// S3 DeleteObject (a DELETE of a key without `uploadId`).
    DeleteObject,
    /// Any other S3 request (multipart bookkeeping, HEAD, listings).
    OtherS3,
}

/// What the proxy does instead of (or to) the real response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer 500 InternalError without asking moto.
    Status500,
    /// Answer 503 SlowDown without asking moto.
    SlowDown,
    /// Forward, send the head and half the body, then reset the connection.
    ResetMidBody,
    /// Forward, send the head (with the full Content-Length) and half the
    /// body, then close the connection normally.
    TruncateBody,
    /// Answer 400 ThrottlingException (KMS JSON) without asking moto.
    KmsThrottling,
    /// Answer 400 AccessDeniedException (KMS JSON) without asking moto
    /// (moto enforces no key policies).
    KmsAccessDenied,
    /// Answer 403 AccessDenied (S3 XML) without asking moto, as S3 answers
    /// a reader the bucket policy (or the object's SSE-KMS key) refuses.
    S3AccessDenied,
    /// Forward, then turn the JSON response body into an array (`{` to
    /// `[`), so it no longer parses; everything else in it stays.
    MalformedJson,
    /// Forward (the server acts on the request), then hold the reply for
    /// [`HOLD`] before sending it.
    HoldResponse,
    /// Forward, then hold the reply for [`STALL`]: a server gone silent.
    Stall,
}

/// How long [`Fault::HoldResponse`] holds a reply.
pub(crate) const HOLD: std::time::Duration = std::time::Duration::from_secs(2);
/// How long [`Fault::Stall`] holds a reply: longer than any test waits.
pub(crate) const STALL: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Debug)]
struct Rule {
    op: Op,
    fault: Fault,
    /// How many more matching requests to break.
    remaining: usize,
}

/// Something to do just before a request is forwarded (e.g. another
/// writer changing the object).
type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// Every request seen: its operation and the fault applied, if any.
    log: Vec<(Op, Option<Fault>)>,
    /// Run once, before the first request of its kind is forwarded.
    hooks: Vec<(Op, Hook)>,
    /// Bytes from the client (request heads and bodies) and to it
    /// (response heads and bodies), as on the wire.
    sent: usize,
    received: usize,
    swap: Option<Swap>,
    /// Requests that said `x-amz-request-payer: requester`.
    requester_pays: usize,
    /// Buckets that live in another region, as S3 answers for them.
    homes: Vec<Home>,
    /// Requests answered with a redirect to a bucket's region.
    redirected: usize,
}

/// A bucket "in" `region`: an S3 request for it signed for another region
/// is refused as S3 refuses it, naming the region.
struct Home {
    bucket: String,
    region: String,
    redirect: Redirect,
}

/// How S3 says a bucket is elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// 301 PermanentRedirect with `x-amz-bucket-region` (what a request to
    /// the wrong regional endpoint gets).
    Permanent,
    /// 400 AuthorizationHeaderMalformed, the region only in the error's
    /// `<Region>` (what a request signed for the wrong region gets).
    MalformedAuthorization,
}

/// Replaces an object in the store between two GETs of one download.
struct Swap {
    /// GETs (of any range) forwarded untouched before the swap.
    after: usize,
    seen: usize,
    swap: Box<dyn FnOnce() + Send>,
}

impl std::fmt::Debug for Swap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swap").field("after", &self.after).finish()
    }
}

pub(crate) struct Proxy {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub(crate) fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// endpoint")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, upstream) = (state.clone(), upstream.clone());
                    std::thread::spawn(move || {
                        // A client that went away is not the test's concern.
                        let _ = serve(conn, &upstream, &state);
                    });
                }
            })
        };
        Proxy {
            port,
            state,
            stop,
            accept: Some(accept),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The binary, as [`Env::atrest`] runs it, talking to S3 and KMS
    /// through this proxy.
    pub(crate) fn atrest(&self, env: &Env) -> std::process::Command {
        let mut command = env.atrest();
        command.env("AWS_ENDPOINT_URL", self.url());
        command
    }

    /// Breaks the next `times` requests of kind `op` with `fault`.
    pub(crate) fn add(&self, op: Op, fault: Fault, times: usize) {
        self.state.lock().unwrap().rules.push(Rule {
            op,
            fault,
            remaining: times,
        });
    }

    /// Forgets the rules and the requests seen.
    pub(crate) fn clear(&self) {
        let mut state = self.state.lock().unwrap();
        state.rules.clear();
        state.log.clear();
        state.swap = None;
    }

    /// Runs `swap` (which changes the store) once `after` GETs have been
    /// forwarded, before the next one goes to the store.
    fn swap_after(&self, after: usize, swap: impl FnOnce() + Send + 'static) {
        self.state.lock().unwrap().swap = Some(Swap {
            after,
            seen: 0,
            swap: Box::new(swap),
        });
    }

    /// Runs `hook` just before the next request of kind `op` is forwarded.
    pub(crate) fn before(&self, op: Op, hook: impl FnOnce() + Send + 'static) {
        self.state.lock().unwrap().hooks.push((op, Box::new(hook)));
    }

    /// Bytes the client sent and received through the proxy so far.
    pub(crate) fn traffic(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.sent, state.received)
    }

    /// How many requests of kind `op` were broken with `fault`.
    fn fired(&self, op: Op, fault: Fault) -> usize {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|(o, f)| *o == op && *f == Some(fault))
            .count()
    }

    /// How many requests said `x-amz-request-payer: requester`, and how
    /// many S3 requests there were in all.
    pub(crate) fn requester_pays(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        let s3 = state.log.iter().filter(|(o, _)| *o != Op::Kms).count();
        (state.requester_pays, s3)
    }

    /// Answers every S3 request for `bucket` not signed for `region` as S3
    /// answers a request for a bucket in another region.
    pub(crate) fn bucket_in(&self, bucket: &str, region: &str, redirect: Redirect) {
        self.state.lock().unwrap().homes.push(Home {
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            redirect,
        });
    }

    /// How many requests were redirected to their bucket's region.
    pub(crate) fn redirected(&self) -> usize {
        self.state.lock().unwrap().redirected
    }

    /// How many requests of kind `op` were seen.
    pub(crate) fn seen(&self, op: Op) -> usize {
        let state = self.state.lock().unwrap();
        state.log.iter().filter(|(o, _)| *o == op).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A parsed HTTP message head: the first line and the header lines.
struct Head {
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn read(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
        let mut first = String::new();
        if reader.read_line(&mut first)? == 0 {
            return Ok(None);
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Some(Head {
            first: first.trim_end_matches(['\r', '\n']).to_owned(),
            headers,
        }))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<usize> {
        self.get("content-length").and_then(|v| v.parse().ok())
    }

    fn is_chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// The head as bytes, without the headers in `drop`, plus `extra` lines.
    fn encode(&self, drop: &[&str], extra: &[String]) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.first);
        for (name, value) in &self.headers {
            if !drop.iter().any(|d| name.eq_ignore_ascii_case(d)) {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        for line in extra {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// Reads a body framed by Content-Length or chunked encoding (decoded);
/// otherwise a request has none and a response runs to the end of the
/// stream.
fn read_body(reader: &mut impl BufRead, head: &Head, is_request: bool) -> std::io::Result<Vec<u8>> {
    if head.is_chunked() {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if let Some(len) = head.content_length() {
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        Ok(body)
    } else if is_request {
        Ok(Vec::new())
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        Ok(body)
    }
}

fn classify(head: &Head) -> Op {
    if head.get("x-amz-target").is_some() {
        return Op::Kms;
    }
    let mut parts = head.first.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // Path-style: /bucket/key... (a listing is `/bucket/?list-type=2`).
    let has_key = path
        .trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(_, key)| !key.is_empty());
    let has = |param: &str| query.split('&').any(|p| p.split('=').next() == Some(param));
    match method {
        "POST" if has_key && has("uploads") => Op::CreateMultipartUpload,
        "PUT" if has_key && has("uploadId") => Op::UploadPart,
        "PUT" if has_key => Op::PutObject,
        "DELETE" if has_key && !has("uploadId") => Op::DeleteObject,
        "GET" if has_key && !has("uploadId") => match head.get("range") {
            Some(range) if !range.starts_with("bytes=0-") => Op::GetLaterRange,
            _ => Op::GetObject,
        },
        _ => Op::OtherS3,
    }
}

/// Serves one request on `client`, then closes it.
fn serve(client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some(head) = Head::read(&mut reader)? else {
        return Ok(());
    };
    if head
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = read_body(&mut reader, &head, true)?;
    let is_head = head.first.starts_with("HEAD ");
    let op = classify(&head);

    if let Some(reply) = wrong_region(&head, is_head, state) {
        client.write_all(reply.as_bytes())?;
        return close(client);
    }
    let hook = {
        let mut state = state.lock().unwrap();
        state.sent += head.encode(&[], &[]).len() + body.len();
        if head.get("x-amz-request-payer") == Some("requester") {
            state.requester_pays += 1;
        }
        let at = state.hooks.iter().position(|(o, _)| *o == op);
        at.map(|i| state.hooks.remove(i).1)
    };
    if let Some(hook) = hook {
        hook();
    }

    let fault = {
        let mut state = state.lock().unwrap();
        let fault = state
            .rules
            .iter_mut()
            .find(|r| r.op == op && r.remaining > 0)
            .map(|r| {
                r.remaining -= 1;
                r.fault
            });
        state.log.push((op, fault));
        fault
    };
    let swap = {
        let mut state = state.lock().unwrap();
        match &mut state.swap {
            Some(swap) if matches!(op, Op::GetObject | Op::GetLaterRange) => {
                swap.seen += 1;
                match swap.seen > swap.after {
                    true => state.swap.take().map(|s| s.swap),
                    false => None,
                }
            }
            _ => None,
        }
    };
    if let Some(swap) = swap {
        swap();
    }

    let canned = |status: &str, content_type: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match fault {
        Some(Fault::Status500) => {
            let reply = canned(
                "500 Internal Server Error",
                "application/xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>fault-500</RequestId></Error>",
            );
            client.write_all(reply.as_bytes())?;
            return close(client);
        }
        Some(Fault::SlowDown) => {
            let reply = canned(
                "503 Slow Down",
                "application/xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-503</RequestId></Error>",
            );
            client.write_all(reply.as_bytes())?;
            return close(client);
        }
        Some(Fault::KmsThrottling) => {
            let reply = canned(
                "400 Bad Request",
                "application/x-amz-json-1.1",
                "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}",
            );
            client.write_all(reply.as_bytes())?;
            return close(client);
        }
        Some(Fault::S3AccessDenied) => {
            let reply = canned(
                "403 Forbidden",
                "application/xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>fault-403</RequestId></Error>",
            );
            client.write_all(reply.as_bytes())?;
            return close(client);
        }
        Some(Fault::KmsAccessDenied) => {
            let reply = canned(
                "400 Bad Request",
                "application/x-amz-json-1.1",
                "{\"__type\":\"AccessDeniedException\",\"message\":\"not authorized to perform kms:ReEncryptTo\"}",
            );
            client.write_all(reply.as_bytes())?;
            return close(client);
        }
        _ => {}
    }

    // Forward to moto on a fresh connection.
    let mut up = TcpStream::connect(upstream)?;
    let mut request = head.encode(
        &[
            "connection",
            "expect",
            "content-length",
            "transfer-encoding",
        ],
        &[
            "Connection: close".to_owned(),
            format!("Content-Length: {}", body.len()),
        ],
    );
    request.extend_from_slice(&body);
    up.write_all(&request)?;
    let mut up_reader = BufReader::new(up);
    let Some(resp) = Head::read(&mut up_reader)? else {
        return close(client);
    };
    let status: u16 = resp
        .first
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let bodiless = is_head || status == 204 || status == 304 || (100..200).contains(&status);
    let resp_body = if bodiless {
        Vec::new()
    } else {
        read_body(&mut up_reader, &resp, false)?
    };
    let reply_head = if bodiless {
        resp.encode(&["connection"], &["Connection: close".to_owned()])
    } else {
        resp.encode(
            &["connection", "content-length", "transfer-encoding"],
            &[
                "Connection: close".to_owned(),
                format!("Content-Length: {}", resp_body.len()),
            ],
        )
    };
    match fault {
        Some(Fault::HoldResponse) => std::thread::sleep(HOLD),
        Some(Fault::Stall) => std::thread::sleep(STALL),
        _ => {}
    }
    client.write_all(&reply_head)?;
    state.lock().unwrap().received += reply_head.len() + resp_body.len();
    let mut resp_body = resp_body;
    if fault == Some(Fault::MalformedJson) {
        if let Some(brace) = resp_body.iter_mut().find(|b| **b == b'{') {
            *brace = b'[';
        }
    }
    match fault {
        Some(Fault::ResetMidBody) => {
            client.write_all(&resp_body[..resp_body.len() / 2])?;
            client.flush()?;
            reset(client)
        }
        Some(Fault::TruncateBody) => {
            client.write_all(&resp_body[..resp_body.len() / 2])?;
            close(client)
        }
        _ => {
            client.write_all(&resp_body)?;
            close(client)
        }
    }
}

/// S3's answer to a request for a bucket of another region than the one
/// its signature names (path-style: the bucket is the first segment).
fn wrong_region(head: &Head, is_head: bool, state: &Mutex<State>) -> Option<String> {
    if head.get("x-amz-target").is_some() {
        return None;
    }
    let target = head.first.split(' ').nth(1)?;
    let bucket = target.trim_start_matches('/').split(['/', '?']).next()?;
    // `Credential=AKID/DATE/REGION/s3/aws4_request`
    let signed = head.get("authorization")?.split('/').nth(2)?.to_owned();
    let mut state = state.lock().unwrap();
    let home = state
        .homes
        .iter()
        .find(|h| h.bucket == bucket && h.region != signed)?;
    let (status, header, body) = match home.redirect {
        Redirect::Permanent => (
            "301 Moved Permanently",
            format!("x-amz-bucket-region: {}\r\n", home.region),
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>{bucket}.s3.{}.amazonaws.com</Endpoint><Bucket>{bucket}</Bucket></Error>", home.region),
        ),
        Redirect::MalformedAuthorization => (
            "400 Bad Request",
            // A HEAD's answer, without a body, carries the header.
            match is_head {
                true => format!("x-amz-bucket-region: {}\r\n", home.region),
                false => String::new(),
            },
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region '{signed}' is wrong; expecting '{}'</Message><Region>{}</Region></Error>", home.region, home.region),
        ),
    };
    state.redirected += 1;
    // A HEAD's answer has no body, only its status and headers.
    let body = if is_head { String::new() } else { body };
    Some(format!(
        "HTTP/1.1 {status}\r\n{header}Content-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// Closes with a TCP reset (SO_LINGER 0) instead of a FIN. std cannot set
/// SO_LINGER on stable; tokio (built with `net` for the SDK's HTTP client)
/// can.
fn reset(client: TcpStream) -> std::io::Result<()> {
    let _runtime = RUNTIME.enter();
    client.set_nonblocking(true)?;
    let client = tokio::net::TcpStream::from_std(client)?;
    client.set_zero_linger()?;
    drop(client);
    Ok(())
}

fn close(client: TcpStream) -> std::io::Result<()> {
    client.shutdown(Shutdown::Write)?;
    // Let the client read everything before the socket goes.
    let mut rest = Vec::new();
    let _ = (&client).take(1 << 20).read_to_end(&mut rest);
    Ok(())
}

/// The test's environment with a proxy in front of its endpoint.
struct Faulty {
    env: Env,
    proxy: Proxy,
}

impl Faulty {
    fn new() -> Option<Faulty> {
        let env = env()?;
        let proxy = Proxy::start(&env.endpoint);
        Some(Faulty { env, proxy })
    }

    /// Runs atrest through the proxy.
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.env
            .atrest()
            .env("AWS_ENDPOINT_URL", self.proxy.url())
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.run(args);
        assert_status(&out, 0, args);
        out
    }

    /// Asserts a clean failure: a runtime-error status, one `atrest:
    /// error:` line naming `needle` (case-insensitive), and nothing left in
    /// the working directory beyond `expected_files`.
    fn fails(&self, args: &[&str], needle: &str, expected_files: &[&str]) {
        let out = self.run(args);
        let code = out.status.code();
        assert!(
            code.is_some_and(|c| c != 0),
            "atrest {}: expected a failure, got {code:?}\n{}",
            args.join(" "),
            stderr(&out)
        );
        let err = stderr(&out);
        eprintln!("atrest {}: exit {code:?}, {}", args.join(" "), err.trim());
        let line = err
            .lines()
            .find(|l| l.starts_with("atrest: error:"))
            .unwrap_or_else(|| panic!("atrest {}: no error line:\n{err}", args.join(" ")));
        assert!(
            line.to_lowercase().contains(&needle.to_lowercase()),
            "atrest {}: error does not mention {needle:?}:\n{err}",
            args.join(" ")
        );
        assert_eq!(
            self.env.files(),
            expected_files,
            "atrest {}: unexpected files left",
            args.join(" ")
        );
    }

    fn assert_no_multipart_uploads(&self) {
        let uploads = block_on(
            self.env
                .s3
                .list_multipart_uploads()
                .bucket(&self.env.bucket)
                .send(),
        )
        .unwrap();
        assert!(
            uploads.uploads().is_empty(),
            "orphaned multipart uploads: {:?}",
            uploads.uploads()
        );
    }

    fn object_exists(&self, key: &str) -> bool {
        block_on(
            self.env
                .s3
                .head_object()
                .bucket(&self.env.bucket)
                .key(key)
                .send(),
        )
        .is_ok()
    }

    /// Writes `name` with `data` and encrypts it to `key` with no faults.
    fn put(&self, name: &str, data: &[u8], key: &str) {
        std::fs::write(self.env.path(name), data).unwrap();
        self.env.ok(&["encrypt", name, &self.env.uri(key)]);
    }
}

const MULTIPART: usize = 5 * 1024 * 1024 + 1;

/// Encrypts `plain` to `big` in 5 MiB parts with the first `op` request's
/// reply held by the proxy, and sends SIGINT while it is held.
fn encrypt_stopped_during(t: &Faulty, op: Op, plain: &[u8]) -> std::process::Output {
    t.env.create_data_key();
    std::fs::write(t.env.path("big"), plain).unwrap();
    t.proxy.add(op, Fault::HoldResponse, 1);
    let child = t
        .env
        .atrest()
        .env("AWS_ENDPOINT_URL", t.proxy.url())
        .args(["encrypt", "big", &t.env.uri("big"), "--part-size", "5M"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while t.proxy.seen(op) == 0 {
        assert!(started.elapsed().as_secs() < 30, "no {op:?} request");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The reply is held: stop the upload now.
    std::thread::sleep(std::time::Duration::from_millis(200));
    crate::interrupt::signal(child.id(), "INT");
    child.wait_with_output().unwrap()
}

/// An upload stopped while its CreateMultipartUpload is answered (S3 made
/// the upload, the reply is on its way) still aborts that upload: the
/// request runs to its end in a task of its own, so its id is learnt.
/// Before, the request's future was dropped and the upload stayed behind,
/// parts and all, until a lifecycle rule removed it.
#[test]
fn an_upload_stopped_while_s3_creates_it_leaves_no_multipart_upload() {
    let Some(t) = Faulty::new() else { return };
    let plain = sample(12 * 1024 * 1024, 4);
    let out = encrypt_stopped_during(&t, Op::CreateMultipartUpload, &plain);
    assert_status(&out, 130, &["encrypt, SIGINT during CreateMultipartUpload"]);
    // (If atrest had not waited for the id, the upload would be listed.)
    t.assert_no_multipart_uploads();
    assert!(!t.object_exists("big"));
}

/// A stop that races the upload's completion (S3 has completed it, the
/// reply is on its way) finds no multipart upload to abort: the object is
/// whole, and atrest says nothing of parts that "may remain" (before, a
/// warning said so, which was false).
#[test]
fn an_upload_stopped_while_s3_completes_it_leaves_a_whole_object_and_no_false_warning() {
    let Some(t) = Faulty::new() else { return };
    let plain = sample(12 * 1024 * 1024, 5);
    // CreateMultipartUpload and UploadPart have their own ops: the first
    // other S3 request is CompleteMultipartUpload.
    let out = encrypt_stopped_during(&t, Op::OtherS3, &plain);
    assert_status(
        &out,
        130,
        &["encrypt, SIGINT during CompleteMultipartUpload"],
    );
    assert!(!stderr(&out).contains("may remain"), "{}", stderr(&out));
    t.assert_no_multipart_uploads();
    let back = t.env.ok(&["decrypt", &t.env.uri("big"), "-"]);
    assert!(back.stdout == plain, "the completed object decrypts whole");
}

/// Issue 19.1: an object replaced by another (under the same data.key)
/// while it downloads never gives a mix of the two. Every GET after the
/// first pins the first one's ETag (If-Match, which moto honours), so the
/// first GET after the swap fails with 412: exit 1 and a clear error; a
/// file destination is left as it was, and stdout holds at most a prefix of
/// the old plaintext. v1 (which nothing else would catch) and v2, into a
/// file (parallel streams) and to stdout (ordered).
#[test]
fn an_object_replaced_mid_download_is_never_mixed_into_the_output() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();
    // Three 5 MiB runs (and the first GET) at --part-size 5.
    let len = 12 * 1024 * 1024 + 5;
    let old = sample(len, 11);
    for format in ["v1", "v2", "s3ec-v3"] {
        std::fs::write(t.env.path("old"), &old).unwrap();
        std::fs::write(t.env.path("new"), sample(len, 12)).unwrap();
        let encrypt = |name: &str, key: &str| {
            let uri = t.env.uri(key);
            let mut args = vec!["encrypt", "--format", format, name, &uri];
            // The S3 Encryption Client's objects have a KMS key each.
            if format == "s3ec-v3" {
                args.extend(["--key", &t.env.key_id]);
            }
            t.env.ok(&args);
        };
        encrypt("old", "old");
        encrypt("new", "new");
        // Deleted is changed too (it said "does not exist", and not that
        // the output was incomplete).
        for (dest, deleted) in [("dest", false), ("-", false), ("dest", true), ("-", true)] {
            t.env.copy("old", "obj");
            std::fs::write(t.env.path("dest"), b"previous contents").unwrap();
            t.proxy.clear();
            let (s3, bucket) = (t.env.s3.clone(), t.env.bucket.clone());
            t.proxy.swap_after(1, move || match deleted {
                false => {
                    let copy = s3.copy_object().bucket(&bucket).key("obj");
                    let copy = copy.copy_source(format!("{bucket}/new"));
                    block_on(copy.send()).unwrap();
                }
                true => {
                    block_on(s3.delete_object().bucket(&bucket).key("obj").send()).unwrap();
                }
            });
            let args = ["decrypt", "--part-size", "5", &t.env.uri("obj"), dest];
            let out = t.run(&args);
            let how = if deleted { "deleted" } else { "swapped" };
            let what = [format, "object", how, "mid-download to", dest];
            assert_status(&out, 1, &what);
            assert!(
                t.proxy.seen(Op::GetLaterRange) >= 1,
                "{what:?}: one GET only"
            );
            let err = stderr(&out);
            let line = err
                .lines()
                .find(|l| l.starts_with("atrest: error:"))
                .unwrap_or_else(|| panic!("{what:?}: no error line:\n{err}"));
            assert!(
                line.contains("changed during the download"),
                "{what:?}: {line}"
            );
            assert_eq!(
                std::fs::read(t.env.path("dest")).unwrap(),
                b"previous contents",
                "{what:?}"
            );
            if dest == "-" {
                assert!(
                    out.stdout.len() < old.len() && old.starts_with(&out.stdout),
                    "{what:?}: stdout is not a strict prefix of the old plaintext"
                );
                assert!(
                    line.contains("the output is incomplete"),
                    "{what:?}: {line}"
                );
            } else {
                assert!(line.contains("nothing was written"), "{what:?}: {line}");
            }
            assert_eq!(
                t.env.files(),
                ["data.key", "dest", "new", "old"],
                "{what:?}"
            );
        }
    }
}

#[test]
fn transient_s3_errors_on_the_first_attempt_are_retried() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();

    // One PUT: 500 then 503 on its first two attempts; the third succeeds.
    let small = sample(70_000, 1);
    std::fs::write(t.env.path("small"), &small).unwrap();
    t.proxy.add(Op::PutObject, Fault::Status500, 1);
    t.proxy.add(Op::PutObject, Fault::SlowDown, 1);
    t.ok(&["encrypt", "small", &t.env.uri("small")]);
    assert_eq!(t.proxy.fired(Op::PutObject, Fault::Status500), 1);
    assert_eq!(t.proxy.fired(Op::PutObject, Fault::SlowDown), 1);

    // GET: 500 once, 503 once.
    t.proxy.add(Op::GetObject, Fault::Status500, 1);
    t.proxy.add(Op::GetObject, Fault::SlowDown, 1);
    t.ok(&["decrypt", &t.env.uri("small"), "small.out"]);
    assert!(std::fs::read(t.env.path("small.out")).unwrap() == small);
    assert_eq!(t.proxy.fired(Op::GetObject, Fault::Status500), 1);
    assert_eq!(t.proxy.fired(Op::GetObject, Fault::SlowDown), 1);

    // Multipart: the first attempt of the first UploadPart gets 503, of the
    // next one 500, and one multipart bookkeeping request 500.
    t.proxy.clear();
    let big = sample(MULTIPART, 2);
    std::fs::write(t.env.path("big"), &big).unwrap();
    t.proxy.add(Op::UploadPart, Fault::SlowDown, 1);
    t.proxy.add(Op::UploadPart, Fault::Status500, 1);
    t.proxy.add(Op::OtherS3, Fault::Status500, 1);
    t.ok(&["encrypt", "big", &t.env.uri("big"), "--part-size", "5"]);
    assert_eq!(t.proxy.fired(Op::UploadPart, Fault::SlowDown), 1);
    assert_eq!(t.proxy.fired(Op::UploadPart, Fault::Status500), 1);
    assert_eq!(t.proxy.fired(Op::OtherS3, Fault::Status500), 1);
    t.ok(&["decrypt", &t.env.uri("big"), "big.out"]);
    assert!(std::fs::read(t.env.path("big.out")).unwrap() == big);
    t.assert_no_multipart_uploads();
}

#[test]
fn persistent_s3_errors_fail_cleanly_without_orphaned_uploads() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();

    // Every UploadPart fails: the upload is aborted, nothing remains.
    std::fs::write(t.env.path("big"), sample(MULTIPART, 3)).unwrap();
    t.proxy.add(Op::UploadPart, Fault::Status500, usize::MAX);
    t.fails(
        &["encrypt", "big", &t.env.uri("big"), "--part-size", "5"],
        &t.env.uri("big"),
        &["big", "data.key"],
    );
    assert!(
        t.proxy.fired(Op::UploadPart, Fault::Status500) >= 3,
        "retried"
    );
    t.assert_no_multipart_uploads();
    assert!(!t.object_exists("big"), "a failed upload left an object");

    // Every PutObject is throttled.
    t.proxy.clear();
    std::fs::write(t.env.path("small"), b"small").unwrap();
    t.proxy.add(Op::PutObject, Fault::SlowDown, usize::MAX);
    t.fails(
        &["encrypt", "small", &t.env.uri("small")],
        &t.env.uri("small"),
        &["big", "data.key", "small"],
    );
    assert!(
        t.proxy.fired(Op::PutObject, Fault::SlowDown) >= 3,
        "retried"
    );
    assert!(!t.object_exists("small"));

    // Every GET fails: no output file, an existing one is untouched.
    t.proxy.clear();
    t.put("obj", &sample(10_000, 4), "obj");
    std::fs::write(t.env.path("dest"), b"previous contents").unwrap();
    t.proxy.add(Op::GetObject, Fault::Status500, usize::MAX);
    t.fails(
        &["decrypt", &t.env.uri("obj"), "dest"],
        &t.env.uri("obj"),
        &["big", "data.key", "dest", "obj", "small"],
    );
    assert_eq!(
        std::fs::read(t.env.path("dest")).unwrap(),
        b"previous contents"
    );
    t.fails(
        &["decrypt", &t.env.uri("obj"), "fresh"],
        &t.env.uri("obj"),
        &["big", "data.key", "dest", "obj", "small"],
    );
}

/// Broken response bodies: on the first attempt only, atrest may recover
/// (retrying) or fail cleanly; always broken, it must fail cleanly. Never a
/// wrong or partial output.
#[test]
fn broken_download_bodies_never_give_wrong_or_partial_output() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();
    let data = sample(300_000, 5);
    t.put("obj", &data, "obj");
    std::fs::write(t.env.path("dest"), b"previous contents").unwrap();
    let files = ["data.key", "dest", "obj"];

    for fault in [Fault::ResetMidBody, Fault::TruncateBody] {
        for times in [1, usize::MAX] {
            t.proxy.clear();
            t.proxy.add(Op::GetObject, fault, times);
            let out = t.run(&["decrypt", &t.env.uri("obj"), "dest"]);
            assert!(
                t.proxy.fired(Op::GetObject, fault) >= 1,
                "{fault:?} never fired"
            );
            let back = std::fs::read(t.env.path("dest")).unwrap();
            let when = if times == 1 {
                "first attempt"
            } else {
                "always"
            };
            eprintln!(
                "{fault:?} ({when}): exit {:?}, {}",
                out.status.code(),
                stderr(&out).trim()
            );
            if out.status.success() {
                assert!(times != usize::MAX, "{fault:?} always: cannot succeed");
                assert!(back == data, "{fault:?} ({when}): wrong plaintext");
                std::fs::write(t.env.path("dest"), b"previous contents").unwrap();
            } else {
                assert_eq!(
                    back, b"previous contents",
                    "{fault:?} ({when}): destination changed on failure"
                );
                let err = stderr(&out);
                assert!(
                    err.lines()
                        .any(|l| l.starts_with("atrest: error:") && l.contains(&t.env.uri("obj"))),
                    "{fault:?} ({when}): unclear error:\n{err}"
                );
                assert_ne!(out.status.code(), Some(4), "not an integrity failure");
            }
            assert_eq!(t.env.files(), files, "{fault:?} ({when}): files left");
        }
    }
}

/// A stream whose body breaks part-way resumes from its first frame not yet
/// handed on (twice at most), into a file and to stdout alike: the output
/// is exact. Broken for good, into a file it fails cleanly; to stdout the
/// exit status says so and what was written is a prefix of the plaintext.
#[test]
fn broken_download_streams_resume_where_they_stopped() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();
    let data = sample(2_000_000, 7);
    t.put("obj", &data, "obj");
    let files = ["data.key", "dest", "obj"];
    for dest in ["dest", "-"] {
        let to_stdout = dest == "-";
        for fault in [Fault::ResetMidBody, Fault::TruncateBody] {
            std::fs::write(t.env.path("dest"), b"previous contents").unwrap();
            t.proxy.clear();
            t.proxy.add(Op::GetLaterRange, fault, 1);
            let out = t.ok(&["decrypt", &t.env.uri("obj"), dest]);
            let written = match to_stdout {
                true => out.stdout.clone(),
                false => std::fs::read(t.env.path("dest")).unwrap(),
            };
            assert!(written == data, "{dest} {fault:?}: output differs");
            assert_eq!(t.proxy.fired(Op::GetLaterRange, fault), 1);
            // One broken stream and the one that resumed it.
            assert_eq!(t.proxy.seen(Op::GetLaterRange), 2, "{dest} {fault:?}");
            // A resumed stream is no failure: nothing said (-v logs it).
            assert!(!stderr(&out).contains("resuming"), "{}", stderr(&out));

            std::fs::write(t.env.path("dest"), b"previous contents").unwrap();
            t.proxy.clear();
            t.proxy.add(Op::GetLaterRange, fault, usize::MAX);
            let out = t.run(&["decrypt", &t.env.uri("obj"), dest]);
            assert_status(&out, 1, &["decrypt with every stream broken to", dest]);
            let attempts = t.proxy.seen(Op::GetLaterRange);
            assert_eq!(attempts, 3, "{dest} {fault:?}: attempts");
            assert_eq!(
                std::fs::read(t.env.path("dest")).unwrap(),
                b"previous contents"
            );
            assert_eq!(t.env.files(), files, "{dest} {fault:?}: files left");
            if to_stdout {
                // What was written before is authenticated plaintext, in order.
                assert!(
                    out.stdout.len() < data.len() && data.starts_with(&out.stdout),
                    "{fault:?}: stdout is not a strict prefix of the plaintext"
                );
            }
        }
    }
}

/// v1 objects download from parallel part-sized runs, to stdout (put in
/// order, as v2 ones are) and into a file: exact output, whether or not
/// the last batch is the padding block alone (a plaintext of whole
/// blocks), with one stream or many, and a broken run resumes.
#[test]
fn v1_objects_download_from_parallel_runs_that_resume() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();
    for len in [12 << 20, (12 << 20) + 5] {
        let data = sample(len, len as u64);
        std::fs::write(t.env.path("in"), &data).unwrap();
        t.env
            .ok(&["encrypt", "in", &t.env.uri("v1"), "--format", "v1"]);
        for dest in ["-", "out"] {
            let output = |out: &std::process::Output| match dest {
                "-" => out.stdout.clone(),
                _ => std::fs::read(t.env.path("out")).unwrap(),
            };
            let get = ["decrypt", &t.env.uri("v1"), dest, "--part-size", "5M"];
            for streams in ["1", "2", "8"] {
                t.proxy.clear();
                let out = t.ok(&[&get[..], &["--concurrency", streams]].concat());
                assert!(
                    output(&out) == data,
                    "{len} {dest} {streams}: output differs"
                );
                // Three runs of 5 MiB (or what is left), after the first GET.
                assert_eq!(t.proxy.seen(Op::GetLaterRange), 3, "{len} {dest} {streams}");
            }
            t.proxy.clear();
            t.proxy.add(Op::GetLaterRange, Fault::ResetMidBody, 1);
            let out = t.ok(&get);
            assert!(
                output(&out) == data,
                "{len} {dest}, resumed: output differs"
            );
            assert_eq!(t.proxy.seen(Op::GetLaterRange), 4, "{len} {dest}");
            // A resumed stream is no failure: nothing said (-v logs it).
            assert!(!stderr(&out).contains("resuming"), "{}", stderr(&out));
        }
    }
}

#[test]
fn kms_throttling_is_retried_then_reported() {
    let Some(t) = Faulty::new() else { return };

    // The first two KMS requests of each command are throttled: the third
    // attempt succeeds.
    t.proxy.add(Op::Kms, Fault::KmsThrottling, 2);
    t.ok(&["create-data-key", &t.env.key_id]);
    assert_eq!(t.proxy.fired(Op::Kms, Fault::KmsThrottling), 2);

    let data = sample(50_000, 6);
    std::fs::write(t.env.path("in"), &data).unwrap();
    t.proxy.add(Op::Kms, Fault::KmsThrottling, 2);
    t.ok(&["encrypt", "in", &t.env.uri("obj")]);
    t.proxy.add(Op::Kms, Fault::KmsThrottling, 2);
    t.ok(&["decrypt", &t.env.uri("obj"), "out"]);
    assert!(std::fs::read(t.env.path("out")).unwrap() == data);
    assert_eq!(t.proxy.fired(Op::Kms, Fault::KmsThrottling), 6);

    // Throttled for good: each command fails with a clear error, and
    // nothing is written or uploaded.
    t.proxy.clear();
    t.proxy.add(Op::Kms, Fault::KmsThrottling, usize::MAX);
    let before = std::fs::read(t.env.path("data.key")).unwrap();
    t.fails(
        &["create-data-key", &t.env.key_id],
        "throttl",
        &["data.key", "in", "out"],
    );
    assert_eq!(std::fs::read(t.env.path("data.key")).unwrap(), before);
    t.fails(
        &["encrypt", "in", &t.env.uri("obj2")],
        "throttl",
        &["data.key", "in", "out"],
    );
    assert!(!t.object_exists("obj2"));
    assert_eq!(t.proxy.seen(Op::PutObject), 0, "uploaded without a key");
    t.fails(
        &["decrypt", &t.env.uri("obj"), "out2"],
        "throttl",
        &["data.key", "in", "out"],
    );
    assert!(t.proxy.fired(Op::Kms, Fault::KmsThrottling) >= 9, "retried");
}

/// A KMS answer that does not parse must not put its raw body (which, for
/// Decrypt, holds the plaintext data key in base64) into the error message.
#[test]
fn malformed_kms_responses_never_print_the_key() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();
    let wrapped = std::fs::read(t.env.path("data.key")).unwrap();
    let key = block_on(
        t.env
            .kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped))
            .send(),
    )
    .unwrap()
    .plaintext()
    .unwrap()
    .as_ref()
    .to_vec();
    let key_b64 = base64(&key, BASE64_STD);
    let data = sample(20_000, 7);
    t.put("in", &data, "obj");

    t.proxy.add(Op::Kms, Fault::MalformedJson, usize::MAX);
    for args in [
        &["encrypt", "in", &t.env.uri("obj2")][..],
        &["decrypt", &t.env.uri("obj"), "out"][..],
    ] {
        let out = t.run(args);
        let err = stderr(&out);
        eprintln!(
            "atrest {}: exit {:?}, {}",
            args.join(" "),
            out.status.code(),
            err.trim()
        );
        assert!(
            !out.status.success(),
            "atrest {}: succeeded on a malformed KMS response",
            args.join(" ")
        );
        assert!(
            !err.contains(&key_b64) && !err.contains(key_b64.trim_end_matches('=')),
            "atrest {}: the error shows the plaintext data key",
            args.join(" ")
        );
        assert!(
            !err.contains(&hex::encode(&key)),
            "atrest {}: the error shows the key in hex",
            args.join(" ")
        );
    }
    assert!(t.proxy.fired(Op::Kms, Fault::MalformedJson) >= 2);
    assert!(!t.object_exists("obj2"));
    assert_eq!(t.env.files(), ["data.key", "in"]);
}

/// `--no-overwrite` checks that the object is absent, and its PutObject
/// carries `If-None-Match: *` (honoured by moto): an object another writer
/// creates between the check and the write is not overwritten, and atrest
/// says it skipped the file (exit 0), as if the check had seen it.
#[test]
fn no_overwrite_never_replaces_an_object_created_after_its_check() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();
    std::fs::write(t.env.path("ours"), b"ours").unwrap();
    let (s3, bucket) = (t.env.s3.clone(), t.env.bucket.clone());
    t.proxy.before(Op::PutObject, move || {
        block_on(
            s3.put_object()
                .bucket(&bucket)
                .key("raced")
                .body(b"theirs".to_vec().into())
                .send(),
        )
        .unwrap();
    });
    let uri = t.env.uri("raced");
    let out = t.ok(&["encrypt", "--no-overwrite", "ours", &uri]);
    assert!(
        stderr(&out).contains("exists (--no-overwrite)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.env.get_raw("raced"), b"theirs");
    assert_eq!(t.proxy.seen(Op::PutObject), 1);
}

/// A create-only PutObject whose answer was lost wrote the object all the
/// same: the SDK's retry is refused (412, it exists), and atrest said
/// "skipped: exists", though the object was this upload's. The object is
/// told apart by its header (its salt and wrapped key are random): ours,
/// the upload succeeded.
#[test]
fn no_overwrite_after_a_lost_answer_knows_its_own_object() {
    let Some(t) = Faulty::new() else { return };
    t.env.create_data_key();
    std::fs::write(t.env.path("ours"), b"ours").unwrap();
    t.proxy.add(Op::PutObject, Fault::Stall, 1);
    let uri = t.env.uri("lost");
    let args = [
        "encrypt",
        "--no-overwrite",
        "ours",
        &uri,
        "--cli-read-timeout",
        "1",
    ];
    let out = t.ok(&args);
    let (said, err) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!err.contains("exists"), "{err}");
    assert!(said.contains("upload: ours to"), "{said}");
    assert_eq!(t.proxy.seen(Op::PutObject), 2, "no retry: nothing tested");
    t.ok(&["decrypt", &uri, "back"]);
    assert_eq!(std::fs::read(t.env.path("back")).unwrap(), b"ours");
}
