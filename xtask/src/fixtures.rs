//! Deterministic format-v2 test vectors: `cargo xtask fixtures [--check]`.
//!
//! Everything here is a pure function of constants (a fixed data key, salts
//! from seeded ChaCha20), so the files in `fixtures/v2` can be regenerated
//! and compared byte for byte. `crates/crypto/tests/v2_vectors.rs` includes
//! this file to run the same comparison as a test, so it uses only crates
//! that test also has.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use atrest_crypto::{v2, DataKey};
use atrest_format::v2::{frame_nonce, EncryptionContext, Header, TAG_LEN};
use atrest_format::{parse_header, Header as AnyHeader, Parsed};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

/// Where the vectors live, relative to the repository root.
pub const DIR: &str = "fixtures/v2";
/// The message for files that differ from the generator's output.
pub const STALE: &str = "vectors are stale: run `cargo xtask fixtures`";
/// Hand-written files in [`DIR`] that the generator leaves alone.
const HAND_WRITTEN: &[&str] = &["README.md"];

/// The data key of every vector (except the wrong-key one's `data_key`).
const DATA_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};
/// Stands in for a KMS `CiphertextBlob`: opaque bytes to a decoder.
const WRAPPED_KEY: &[u8] = b"atrest test vector: stand-in for a KMS CiphertextBlob";

/// What a decoder must conclude about a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Decrypts to the plaintext with the given length and SHA-256.
    Ok,
    /// `parse_header` rejects it (or finds it incomplete).
    Header,
    /// The key commitment does not match the data key: no frame is opened.
    Commitment,
    /// The header and commitment are fine but the frames do not authenticate.
    Frames,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Ok => "ok",
            Expect::Header => "header-error",
            Expect::Commitment => "commitment-mismatch",
            Expect::Frames => "frame-authentication-failure",
        }
    }

    #[allow(dead_code)] // used by crates/crypto/tests/v2_vectors.rs
    pub fn parse(s: &str) -> Option<Self> {
        [
            Expect::Ok,
            Expect::Header,
            Expect::Commitment,
            Expect::Frames,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// One vector: the object and what decoding it must give.
pub struct Vector {
    pub name: String,
    pub comment: String,
    pub data_key: [u8; 32],
    pub expect: Expect,
    /// For `Ok`: the plaintext. For `Frames`: the authenticated prefix that
    /// a streaming decoder fed the whole body releases before failing.
    pub plaintext: Vec<u8>,
    pub object: Vec<u8>,
}

impl Vector {
    /// The metadata file: `key: value` lines.
    pub fn meta(&self) -> String {
        let mut m = String::new();
        let mut line = |k: &str, v: &str| writeln!(m, "{k}: {v}").unwrap();
        line("name", &self.name);
        line("comment", &self.comment);
        line("object", &format!("{}.object", self.name));
        line("data_key", &hex::encode(self.data_key));
        if let Ok(Parsed::Complete(h)) = parse_header(&self.object) {
            line("wrapped_key", &hex::encode(h.wrapped_key()));
        }
        line("expect", self.expect.as_str());
        let label = match self.expect {
            Expect::Ok => "plaintext",
            _ => "released",
        };
        line(&format!("{label}_len"), &self.plaintext.len().to_string());
        line(
            &format!("{label}_sha256"),
            &hex::encode(Sha256::digest(&self.plaintext)),
        );
        m
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn plaintext(len: usize, seed: u64) -> Vec<u8> {
    let mut p = vec![0u8; len];
    rng(seed ^ 0x5eed).fill_bytes(&mut p);
    p
}

fn context(pairs: &[(&str, &str)]) -> EncryptionContext {
    EncryptionContext::new(pairs.iter().copied()).expect("valid context")
}

fn key() -> DataKey {
    DataKey::from_slice(&DATA_KEY).expect("32 bytes")
}

fn encrypt(plain: &[u8], exponent: u8, ctx: EncryptionContext, seed: u64) -> Vec<u8> {
    let enc = v2::Encryptor::new(&key(), WRAPPED_KEY.to_vec(), exponent, ctx, &mut rng(seed))
        .expect("valid parameters");
    v2::encrypt(enc, plain)
}

fn header_of(object: &[u8]) -> Header {
    match parse_header(object) {
        Ok(Parsed::Complete(AnyHeader::V2(h))) => h,
        other => panic!("not a v2 object: {other:?}"),
    }
}

/// The object's header and its sealed frames.
fn split(object: &[u8]) -> (Header, Vec<Vec<u8>>) {
    let h = header_of(object);
    let frames = object[h.encoded_len()..]
        .chunks(h.frame_size() as usize + TAG_LEN)
        .map(<[u8]>::to_vec)
        .collect();
    (h, frames)
}

fn join(h: &Header, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    h.encode(&mut out);
    frames.iter().for_each(|f| out.extend_from_slice(f));
    out
}

/// The plaintext our streaming decryptor releases before failing.
fn released(data_key: &[u8; 32], object: &[u8]) -> Vec<u8> {
    let k = DataKey::from_slice(data_key).expect("32 bytes");
    let h = header_of(object);
    let mut out = Vec::new();
    if let Ok(mut dec) = v2::Decryptor::new(&k, &h) {
        let _ = dec.update(&object[h.encoded_len()..], &mut out);
    }
    out
}

/// A failure vector before its released plaintext is computed: name,
/// comment, outcome, data key, object.
type Failure = (&'static str, &'static str, Expect, [u8; 32], Vec<u8>);

/// Every vector, in a fixed order.
pub fn vectors() -> Vec<Vector> {
    let mut v = Vec::new();
    let mut ok = |name: &str, comment: &str, plain: Vec<u8>, object: Vec<u8>| {
        v.push(Vector {
            name: name.into(),
            comment: comment.into(),
            data_key: DATA_KEY,
            expect: Expect::Ok,
            plaintext: plain,
            object,
        })
    };

    let hello = b"hello, atrest v2\n".to_vec();
    ok(
        "ok-hello",
        "the worked example of docs/FORMAT.md: one final frame",
        hello.clone(),
        encrypt(&hello, 12, context(&[("purpose", "example")]), 1),
    );
    let empty_ctx = context(&[]);
    ok(
        "ok-empty",
        "empty plaintext: exactly one empty final frame (a bare tag)",
        vec![],
        encrypt(&[], 12, empty_ctx.clone(), 2),
    );
    for (i, len) in [1usize, 4095, 4096, 4097, 8192, 3 * 4096 + 5]
        .into_iter()
        .enumerate()
    {
        let p = plaintext(len, len as u64);
        let object = encrypt(&p, 12, empty_ctx.clone(), 10 + i as u64);
        ok(
            &format!("ok-{len}-e12"),
            &format!("{len} bytes in 4 KiB frames"),
            p,
            object,
        );
    }
    let p = plaintext(100_000, 7);
    ok(
        "ok-100000-e16",
        "default 64 KiB frames: one full frame and a partial final one",
        p.clone(),
        encrypt(
            &p,
            16,
            context(&[("bucket", "my-bucket"), ("key", "dir/file.bin")]),
            20,
        ),
    );
    let p = plaintext(20_000, 8);
    ok(
        "ok-20000-e13-context",
        "8 KiB frames and a context with several pairs, one non-ASCII",
        p.clone(),
        encrypt(
            &p,
            13,
            context(&[("z-last", ""), ("Ünïcödé", "✓ value"), ("a", "first")]),
            21,
        ),
    );
    let p = plaintext(1000, 9);
    ok(
        "ok-1000-e24",
        "the largest frame size, 16 MiB, holding a short final frame",
        p.clone(),
        encrypt(&p, 24, empty_ctx.clone(), 22),
    );
    // Re-wrapped: same data key and frames, another wrapped key.
    let p = plaintext(4097, 4097);
    let (h, frames) = split(&encrypt(&p, 12, empty_ctx.clone(), 13));
    let rewrapped = h
        .with_wrapped_key(b"another wrapped key, as after KMS ReEncrypt".to_vec())
        .expect("valid");
    ok(
        "ok-rewrapped",
        "ok-4097-e12 with only the wrapped key replaced: the frames stay valid",
        p,
        join(&rewrapped, &frames),
    );

    // The base of the failure vectors: frames 0 and 1 full, frame 2 final.
    let base_plain = plaintext(2 * 4096 + 100, 99);
    let base = encrypt(
        &base_plain,
        12,
        context(&[("bucket", "b"), ("key", "k")]),
        30,
    );
    let (bh, bf) = split(&base);
    let tail = 8 + bh.wrapped_key().len();
    let mut bad: Vec<Failure> = Vec::new();
    let flip = |at: usize, mask: u8| {
        let mut o = base.clone();
        o[at] ^= mask;
        o
    };
    // `base` with one byte of its context changed: the byte `skip` past the
    // first `needle` after the fixed header fields.
    let edit_context = |needle: &[u8], skip: usize, byte: u8| {
        let mut o = base.clone();
        let from = tail + 67;
        let at = o[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        o[from + at + skip] = byte;
        o
    };
    let body = bh.encoded_len();
    let fsz = 4096 + TAG_LEN;
    let wrong = [0xa5u8; 32];
    use Expect::*;
    bad.push((
        "fail-unknown-version",
        "version byte 3",
        Header,
        DATA_KEY,
        flip(0, 1),
    ));
    bad.push((
        "fail-unknown-suite",
        "suite byte 2",
        Header,
        DATA_KEY,
        flip(1, 3),
    ));
    bad.push((
        "fail-reserved",
        "a reserved byte is not zero",
        Header,
        DATA_KEY,
        flip(3, 0x80),
    ));
    bad.push((
        "fail-bad-exponent",
        "frame exponent 11 (below 12)",
        Header,
        DATA_KEY,
        flip(tail, 12 ^ 11),
    ));
    bad.push((
        "fail-header-truncated",
        "the object ends inside the context",
        Header,
        DATA_KEY,
        base[..body - 1].to_vec(),
    ));
    // Context keys out of order: "bucket" -> "zucket" sorts after "key"
    // and "atrest:format".
    bad.push((
        "fail-context-unsorted",
        "context keys not in ascending order",
        Header,
        DATA_KEY,
        edit_context(b"bucket", 0, b'z'),
    ));
    bad.push((
        "fail-wrong-key",
        "decrypted with another data key",
        Commitment,
        wrong,
        base.clone(),
    ));
    bad.push((
        "fail-tampered-salt",
        "one bit of the salt flipped",
        Commitment,
        DATA_KEY,
        flip(tail + 1, 1),
    ));
    bad.push((
        "fail-tampered-commitment",
        "one bit of the commitment flipped",
        Commitment,
        DATA_KEY,
        flip(tail + 64, 0x80),
    ));
    bad.push((
        "fail-tampered-exponent",
        "frame exponent 12 changed to 13 (still valid)",
        Frames,
        DATA_KEY,
        flip(tail, 12 ^ 13),
    ));
    // Same length and still sorted: the value "b" of "bucket" -> "c".
    bad.push((
        "fail-tampered-context",
        "a context value changed in place",
        Frames,
        DATA_KEY,
        edit_context(b"bucket\x01\x00b", 8, b'c'),
    ));
    {
        let other = context(&[("bucket", "b"), ("key", "other")]);
        let forged = atrest_format::v2::Header::new(
            bh.wrapped_key().to_vec(),
            12,
            *bh.salt(),
            *bh.commitment(),
            other,
        )
        .expect("valid");
        bad.push((
            "fail-wrong-context",
            "the header re-encoded with another context",
            Frames,
            DATA_KEY,
            join(&forged, &bf),
        ));
    }
    bad.push((
        "fail-tampered-frame-0",
        "one bit of frame 0's ciphertext",
        Frames,
        DATA_KEY,
        flip(body + 5, 1),
    ));
    bad.push((
        "fail-tampered-final-frame",
        "one bit of the final frame's ciphertext",
        Frames,
        DATA_KEY,
        flip(body + 2 * fsz + 3, 1),
    ));
    bad.push((
        "fail-tampered-tag",
        "one bit of frame 1's tag",
        Frames,
        DATA_KEY,
        flip(body + 2 * fsz - 1, 0x40),
    ));
    bad.push((
        "fail-truncated-at-boundary",
        "the final frame removed",
        Frames,
        DATA_KEY,
        base[..body + 2 * fsz].to_vec(),
    ));
    bad.push((
        "fail-truncated-mid-frame",
        "the last 10 bytes removed",
        Frames,
        DATA_KEY,
        base[..base.len() - 10].to_vec(),
    ));
    bad.push((
        "fail-empty-body",
        "the header alone",
        Frames,
        DATA_KEY,
        base[..body].to_vec(),
    ));
    {
        let mut o = base.clone();
        o.push(0);
        bad.push((
            "fail-extended-byte",
            "one byte appended",
            Frames,
            DATA_KEY,
            o,
        ));
    }
    let derived = v2::derive(&key(), bh.salt(), bh.suite());
    let gcm_seal = |index: u64, is_final: bool, plain: &[u8]| {
        // Sealed by hand so forbidden frames can be made too.
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let gcm = aes_gcm::Aes256Gcm::new(derived.expose_frame_key().into());
        let mut buf = plain.to_vec();
        let tag = gcm
            .encrypt_in_place_detached(&frame_nonce(index, is_final).into(), bh.aad(), &mut buf)
            .expect("short");
        buf.extend_from_slice(&tag);
        buf
    };
    {
        let mut frames = bf.clone();
        frames.push(gcm_seal(3, true, b"extra"));
        bad.push((
            "fail-extended-frame",
            "a valid final frame 3 after the final frame 2",
            Frames,
            DATA_KEY,
            join(&bh, &frames),
        ));
    }
    bad.push((
        "fail-swapped-frames",
        "frames 0 and 1 swapped",
        Frames,
        DATA_KEY,
        join(&bh, &[bf[1].clone(), bf[0].clone(), bf[2].clone()]),
    ));
    bad.push((
        "fail-duplicated-frame",
        "frame 0 twice",
        Frames,
        DATA_KEY,
        join(
            &bh,
            &[bf[0].clone(), bf[0].clone(), bf[1].clone(), bf[2].clone()],
        ),
    ));
    bad.push((
        "fail-dropped-frame",
        "frame 1 removed",
        Frames,
        DATA_KEY,
        join(&bh, &[bf[0].clone(), bf[2].clone()]),
    ));
    {
        // The forbidden encoding of 8192 bytes: two non-final full frames
        // and an empty final frame, all with genuine tags.
        let p = &base_plain[..8192];
        let frames = [
            gcm_seal(0, false, &p[..4096]),
            gcm_seal(1, false, &p[4096..]),
            gcm_seal(2, true, b""),
        ];
        bad.push((
            "fail-empty-final-frame",
            "an empty final frame after full frames (genuine tags)",
            Frames,
            DATA_KEY,
            join(&bh, &frames),
        ));
    }
    {
        let frames = [
            bf[0].clone(),
            bf[1].clone(),
            gcm_seal(2, false, &base_plain[8192..]),
        ];
        bad.push((
            "fail-no-final-flag",
            "the last frame sealed without the final flag",
            Frames,
            DATA_KEY,
            join(&bh, &frames),
        ));
    }
    for (name, comment, expect, data_key, object) in bad {
        let plaintext = match expect {
            Frames => released(&data_key, &object),
            _ => Vec::new(),
        };
        v.push(Vector {
            name: name.into(),
            comment: comment.into(),
            data_key,
            expect,
            plaintext,
            object,
        });
    }
    v
}

/// An annotated hex dump of `ok-hello` with the derived values, for
/// docs/FORMAT.md.
pub fn worked_example(v: &Vector) -> String {
    let h = header_of(&v.object);
    let k = DataKey::from_slice(&v.data_key).expect("32 bytes");
    let d = v2::derive(&k, h.salt(), h.suite());
    let t = 8 + h.wrapped_key().len();
    let c = h.context().encoded_len();
    let o = &v.object;
    let mut s = String::new();
    let mut field = |range: std::ops::Range<usize>, what: &str| {
        writeln!(s, "{:>4}..{:<4} {what}", range.start, range.end).unwrap();
        for chunk in o[range].chunks(32) {
            writeln!(s, "            {}", hex::encode(chunk)).unwrap();
        }
    };
    field(0..1, "version = 2");
    field(
        1..2,
        "suite = 1 (AES-256-GCM, HKDF-SHA-256, key commitment)",
    );
    field(2..4, "reserved, zero");
    field(
        4..8,
        &format!("wrapped key length L = {} (u32 LE)", h.wrapped_key().len()),
    );
    field(8..t, "wrapped key (opaque)");
    field(
        t..t + 1,
        &format!(
            "frame exponent = {} (frames of {} bytes)",
            h.frame_exponent(),
            h.frame_size()
        ),
    );
    field(t + 1..t + 33, "salt");
    field(t + 33..t + 65, "key commitment");
    field(t + 65..t + 67, &format!("context length C = {c} (u16 LE)"));
    field(
        t + 67..t + 67 + c,
        "context: count, then (u16 len, key, u16 len, value) pairs",
    );
    let body = t + 67 + c;
    let n = o.len() - body - TAG_LEN;
    field(
        body..body + n,
        &format!("frame 0 ciphertext ({n} bytes; final frame)"),
    );
    field(body + n..o.len(), "frame 0 tag");
    writeln!(s).unwrap();
    writeln!(s, "data key        {}", hex::encode(v.data_key)).unwrap();
    writeln!(s, "frame key       {}", hex::encode(d.expose_frame_key())).unwrap();
    writeln!(s, "commitment      {}", hex::encode(d.commitment)).unwrap();
    writeln!(s, "frame 0 nonce   {}", hex::encode(frame_nonce(0, true))).unwrap();
    writeln!(s, "AAD             {}", hex::encode(h.aad())).unwrap();
    writeln!(s, "plaintext       {}", hex::encode(&v.plaintext)).unwrap();
    let ctx: Vec<String> = h
        .context()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    writeln!(s, "context pairs   {}", ctx.join(", ")).unwrap();
    s
}

/// Every generated file: name (relative to [`DIR`]) and contents.
pub fn files() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for v in vectors() {
        if v.name == "ok-hello" {
            files.insert(
                "ok-hello.worked-example.txt".into(),
                worked_example(&v).into_bytes(),
            );
        }
        files.insert(format!("{}.meta", v.name), v.meta().into_bytes());
        files.insert(format!("{}.object", v.name), v.object);
    }
    files
}

/// Compares the generated files with those in `dir`: `Err` lists every
/// missing, different or unexpected file.
pub fn check(dir: &Path) -> Result<(), String> {
    let want = files();
    let mut problems = Vec::new();
    for (name, bytes) in &want {
        match std::fs::read(dir.join(name)) {
            Ok(have) if &have == bytes => {}
            Ok(_) => problems.push(format!("differs: {name}")),
            Err(_) => problems.push(format!("missing: {name}")),
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}; {STALE}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !want.contains_key(&name) && !HAND_WRITTEN.contains(&name.as_str()) {
            problems.push(format!("unexpected: {name}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{STALE}\n  {}", problems.join("\n  ")))
    }
}

/// Writes the generated files to `dir`, removing stale generated ones.
pub fn write(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let want = files();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !want.contains_key(&name) && !HAND_WRITTEN.contains(&name.as_str()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    for (name, bytes) in &want {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(want.len())
}
