//! Property tests of the v1 streaming encryptor and decryptor.

use atrest_crypto::{v1, DataKey, DecryptError};
use proptest::prelude::*;

fn key(seed: u8) -> DataKey {
    DataKey::from_slice(&[seed; 32]).unwrap()
}

/// Splits `data` at the given cut points (taken modulo its length).
fn chunked(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points
        .windows(2)
        .map(|w| data[w[0]..w[1]].to_vec())
        .collect()
}

fn sizes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Exact multiples of the block size, including 0.
        (0usize..20).prop_flat_map(|blocks| prop::collection::vec(any::<u8>(), blocks * 16)),
        prop::collection::vec(any::<u8>(), 0..2000),
    ]
}

proptest! {
    #[test]
    fn round_trip_any_size_any_chunking(
        plain in sizes(),
        iv in any::<[u8; 8]>(),
        seed in any::<u8>(),
        enc_cuts in prop::collection::vec(any::<usize>(), 0..8),
        dec_cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let k = key(seed);
        let mut ct = Vec::new();
        let mut enc = v1::Encryptor::new(&k, &iv);
        for piece in chunked(&plain, &enc_cuts) {
            enc.update(&piece, &mut ct);
        }
        enc.finish(&mut ct);
        prop_assert_eq!(ct.len() as u64, atrest_format::v1::ciphertext_len(plain.len() as u64));
        prop_assert_eq!(&ct, &v1::encrypt(&k, &iv, &plain));

        let mut out = Vec::new();
        let mut dec = v1::Decryptor::new(&k, &iv);
        for piece in chunked(&ct, &dec_cuts) {
            dec.update(&piece, &mut out);
        }
        dec.finish(&mut out).unwrap();
        prop_assert_eq!(out, plain);
    }

    #[test]
    fn arbitrary_ciphertext_never_panics(ct in prop::collection::vec(any::<u8>(), 0..300), iv in any::<[u8; 8]>()) {
        let result = v1::decrypt(&key(1), &iv, &ct);
        if !atrest_format::v1::is_valid_ciphertext_len(ct.len() as u64) {
            prop_assert_eq!(result, Err(DecryptError));
        }
    }

    #[test]
    fn bad_lengths_are_the_generic_error(plain in prop::collection::vec(any::<u8>(), 0..100), cut in 1usize..16) {
        let k = key(2);
        let ct = v1::encrypt(&k, &[0; 8], &plain);
        prop_assert_eq!(v1::decrypt(&k, &[0; 8], &ct[..ct.len() - cut]), Err(DecryptError));
        let mut longer = ct.clone();
        longer.extend(std::iter::repeat_n(0, cut));
        prop_assert_eq!(v1::decrypt(&k, &[0; 8], &longer), Err(DecryptError));
    }

    /// Flipping bits of the last padding byte makes the padding invalid
    /// unless it happens to land on another valid pad value; every failure
    /// is the same error.
    #[test]
    fn broken_padding_is_the_generic_error(plain in prop::collection::vec(any::<u8>(), 0..100), pad_byte in any::<u8>()) {
        let k = key(3);
        let iv = [9; 8];
        // Encrypt blocks whose last byte is chosen, with no padding added:
        // encrypt plain ++ fill, then drop the real padding block.
        let full = plain.len() - plain.len() % 16;
        let mut block = [0u8; 16];
        block[..plain.len() - full].copy_from_slice(&plain[full..]);
        block[15] = pad_byte;
        let mut msg = plain[..full].to_vec();
        msg.extend_from_slice(&block);
        let ct = v1::encrypt(&k, &iv, &msg);
        let ct = &ct[..ct.len() - 16];
        let tail = &msg[msg.len() - 16..];
        let valid = (1..=16).contains(&pad_byte) && tail[16 - pad_byte as usize..].iter().all(|&b| b == pad_byte);
        let result = v1::decrypt(&k, &iv, ct);
        if valid {
            prop_assert_eq!(result.unwrap(), msg[..msg.len() - pad_byte as usize].to_vec());
        } else {
            prop_assert_eq!(result, Err(DecryptError));
        }
    }
}

#[test]
fn empty_ciphertext_is_the_generic_error() {
    assert_eq!(v1::decrypt(&key(0), &[0; 8], &[]), Err(DecryptError));
}

#[test]
fn wrong_key_fails_or_differs() {
    let plain = b"attack at dawn, bring snacks".to_vec();
    let ct = v1::encrypt(&key(4), &[1; 8], &plain);
    assert_ne!(v1::decrypt(&key(5), &[1; 8], &ct).ok(), Some(plain));
}
