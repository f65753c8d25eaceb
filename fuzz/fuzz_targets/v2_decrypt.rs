//! Arbitrary bytes as a v2 object under a fixed data key (the one of the
//! vectors in `fixtures/v2`, so the seeded corpus gets past the key
//! commitment and the fuzzer mutates real frames): parse the header, then
//! decrypt the body three ways, which must agree:
//!
//! - the streaming `Decryptor`, fed in chunks whose sizes come from the input;
//! - the same over the whole body at once (`v2::decrypt`);
//! - `FrameCipher`, frame by frame, at the offsets the length functions give.
//!
//! Nothing may panic; before a failure only whole authenticated frames may
//! come out; a success must produce exactly `plaintext_len(body)` bytes.
#![no_main]

use atrest_crypto::{v2, DataKey};
use atrest_format::v2::{plaintext_len, sealed_frame_len, Header};
use atrest_format::{parse_header, Header as AnyHeader, Parsed};
use libfuzzer_sys::fuzz_target;

fn key() -> DataKey {
    let bytes: Vec<u8> = (0u8..32).collect();
    DataKey::from_slice(&bytes).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Ok(Parsed::Complete(AnyHeader::V2(header))) = parse_header(data) else {
        return;
    };
    let body = &data[header.encoded_len()..];
    let key = key();
    let Ok(mut dec) = v2::Decryptor::new(&key, &header) else {
        // A wrong commitment is refused before any frame: so must the others.
        assert!(v2::FrameCipher::new(&key, &header).is_err());
        assert!(v2::decrypt(&key, &header, body).is_err());
        return;
    };
    let f = header.frame_size() as usize;

    // Streaming, in chunks of 0..=3 frames.
    let mut state = data.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }) | 1;
    let mut out = Vec::new();
    let mut rest = body;
    let mut failed = false;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize) % (3 * (f + 16) + 1);
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        if dec.update(chunk, &mut out).is_err() {
            failed = true;
            // A failed decryptor stays failed.
            assert!(dec.update(&[], &mut Vec::new()).is_err());
            break;
        }
        assert_eq!(out.len() % f, 0, "a partial frame was released");
    }
    let streamed = if failed {
        Err(out)
    } else {
        let mut last = Vec::new();
        match dec.finish(&mut last) {
            Ok(()) => {
                out.extend_from_slice(&last);
                Ok(out)
            }
            Err(_) => {
                assert!(last.is_empty());
                Err(out)
            }
        }
    };

    let whole = v2::decrypt(&key, &header, body);
    let by_frames = frame_by_frame(&key, &header, body);
    match (&streamed, &whole) {
        (Ok(s), Ok(w)) => {
            assert_eq!(s, w);
            assert_eq!(
                Some(s.len() as u64),
                plaintext_len(body.len() as u64, f as u64)
            );
            assert_eq!(by_frames.as_ref(), Some(s));
        }
        (Err(released), Err(_)) => {
            // What came out is a prefix of whole authenticated frames.
            assert_eq!(released.len() % f, 0);
            let opened = open_prefix(&key, &header, body, released.len() / f);
            assert_eq!(
                &opened, released,
                "released bytes are not the frames' plaintext"
            );
            assert!(by_frames.is_none());
        }
        _ => panic!("streaming and whole-body decryption disagree"),
    }
});

/// Decrypts by random access, as a ranged read does; `None` on any failure.
fn frame_by_frame(key: &DataKey, header: &Header, body: &[u8]) -> Option<Vec<u8>> {
    let f = header.frame_size();
    let len = plaintext_len(body.len() as u64, f)?;
    let cipher = v2::FrameCipher::new(key, header).ok()?;
    let count = atrest_format::v2::frame_count(len, f);
    let sealed = sealed_frame_len(f) as usize;
    let mut out = Vec::new();
    for i in 0..count {
        let start = i as usize * sealed;
        let end = (start + sealed).min(body.len());
        out.extend(
            cipher
                .open_frame(i, i + 1 == count, &body[start..end])
                .ok()?,
        );
    }
    Some(out)
}

/// The plaintext of the first `n` frames, each opened as a non-final frame.
fn open_prefix(key: &DataKey, header: &Header, body: &[u8], n: usize) -> Vec<u8> {
    let cipher = v2::FrameCipher::new(key, header).unwrap();
    let sealed = sealed_frame_len(header.frame_size()) as usize;
    let mut out = Vec::new();
    for i in 0..n {
        let frame = &body[i * sealed..(i + 1) * sealed];
        out.extend(cipher.open_frame(i as u64, false, frame).unwrap());
    }
    out
}
