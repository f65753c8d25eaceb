//! Arbitrary ciphertext through the streaming v1 decryptor, in arbitrary
//! chunks: never panics, gives the same result whatever the chunking, and
//! agrees with an independent CBC + PKCS#7 decryption (the `cbc` crate's
//! padded decryption).
//!
//! Inputs are whole objects (the corpus is the seed tool's real objects,
//! under their real data key): a valid v1 header supplies the IV, and the
//! body is what follows it. Other inputs are taken as a bare body under a
//! fixed IV.
#![no_main]

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use atrest_crypto::{v1, DataKey};
use atrest_format::{parse_header, Header, Parsed};
use libfuzzer_sys::fuzz_target;

/// The data key of `fixtures/seed-v1/set-a`.
const KEY_HEX: &str = include_str!("../../fixtures/seed-v1/set-a/data.key.plaintext.hex");

fn key() -> DataKey {
    let hex = KEY_HEX.trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    DataKey::from_slice(&bytes).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let (stored_iv, body) = match parse_header(data) {
        Ok(Parsed::Complete(Header::V1(h))) => (h.stored_iv(), &data[h.encoded_len()..]),
        _ => ([0x5a; 8], data),
    };
    let key = key();

    // Reference: the whole body at once, through the cbc crate.
    let reference = cbc::Decryptor::<aes::Aes256>::new(
        key.expose().into(),
        &atrest_format::v1::cbc_iv(&stored_iv).into(),
    )
    .decrypt_padded_vec_mut::<Pkcs7>(body)
    .ok();
    // cbc accepts an empty body as an empty message without padding; v1
    // always pads, so an empty body is an error.
    let reference = reference.filter(|_| !body.is_empty());

    let whole = v1::decrypt(&key, &stored_iv, body).ok();
    assert_eq!(whole, reference, "v1::decrypt disagrees with the cbc crate");

    // The same body in chunks whose sizes come from the input itself.
    let mut dec = v1::Decryptor::new(&key, &stored_iv);
    let mut out = Vec::new();
    let mut rest = body;
    let mut state = data
        .iter()
        .fold(0x9e37_79b9_u32, |h, &b| h.rotate_left(5) ^ u32::from(b))
        | 1;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 41) as usize; // 0..=40 bytes, empty chunks included
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        let before = out.len();
        dec.update(chunk, &mut out);
        // Only whole blocks come out, and the last block (which may be the
        // padding) is held back.
        assert_eq!((out.len() - before) % 16, 0);
        let consumed = body.len() - tail.len();
        assert_eq!(out.len(), consumed.saturating_sub(1) / 16 * 16);
        rest = tail;
    }
    let streamed = dec.finish(&mut out).map(|()| out).ok();
    assert_eq!(streamed, whole, "chunked decryption differs");
    if let Some(plain) = &streamed {
        assert!(plain.len() < body.len() && plain.len() + 16 >= body.len());
    }
});
