//! `v2::FrameRun`: any chunking of a run of frames gives its plaintext, in
//! batches that never grow past one frame over their limit; short, long or
//! flipped runs fail.

use atrest_crypto::{v2, DataKey, DecryptError};
use atrest_format::v2 as format_v2;
use proptest::prelude::*;

/// A v2 object body of `len` plaintext bytes in 4 KiB frames, its cipher
/// and plaintext.
fn sealed(len: usize) -> (v2::FrameCipher, Vec<u8>, Vec<u8>) {
    let key = DataKey::from_slice(&[7; 32]).unwrap();
    let context = format_v2::EncryptionContext::new([("k", "v")]).unwrap();
    let encryptor = v2::Encryptor::new(
        &key,
        b"wrapped".to_vec(),
        12,
        context,
        &mut rand_core::OsRng,
    )
    .unwrap();
    let header = encryptor.header().clone();
    let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let object = v2::encrypt(encryptor, &plain);
    let body = object[header.encoded_len()..].to_vec();
    (v2::FrameCipher::new(&key, &header).unwrap(), body, plain)
}

/// Feeds `body` (frames `0..=last`) to a run in chunks cut at `cuts`,
/// taking the plaintext out in batches as a download stream does; returns
/// the plaintext, or the error.
fn split(
    cipher: &v2::FrameCipher,
    body: &[u8],
    last: u64,
    expected: u64,
    cuts: &[prop::sample::Index],
    batch: usize,
) -> Result<Vec<u8>, DecryptError> {
    let mut frames = v2::FrameRun::new(cipher.frame_size(), 0, last, expected, true)?;
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
    at.extend([0, body.len()]);
    at.sort();
    let (mut out, mut plain, mut len) = (Vec::new(), Vec::new(), 0);
    for pair in at.windows(2) {
        let mut rest = &body[pair[0]..pair[1]];
        while !rest.is_empty() {
            let used;
            (len, used) = frames.open(cipher, rest, &mut plain, len, batch)?;
            rest = &rest[used..];
            // A batch never grows past the frame that completes it.
            assert!(plain.len() < batch + cipher.frame_size());
            if len >= batch {
                out.extend_from_slice(&plain[..len]);
                len = 0;
            }
        }
    }
    frames.finish()?;
    out.extend_from_slice(&plain[..len]);
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_chunking_gives_the_plaintext(
        len in 0usize..5 * 4096 + 50,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        batch in 1usize..4 * 4096,
    ) {
        let (cipher, body, plain) = sealed(len);
        let last = format_v2::frame_count(len as u64, 4096) - 1;
        let opened = split(&cipher, &body, last, body.len() as u64, &cuts, batch);
        prop_assert_eq!(opened, Ok(plain));
    }

    #[test]
    fn short_long_or_flipped_bodies_fail(
        len in 1usize..3 * 4096 + 50,
        cut in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        batch in 1usize..4 * 4096,
    ) {
        let (cipher, body, _) = sealed(len);
        let last = format_v2::frame_count(len as u64, 4096) - 1;
        let expected = body.len() as u64;
        // Truncated (the server sent less than the range).
        let short = &body[..cut.index(body.len())];
        prop_assert_eq!(split(&cipher, short, last, expected, &cuts, batch), Err(DecryptError));
        // Extended (more than the range).
        let mut long = body.clone();
        long.push(0);
        prop_assert_eq!(split(&cipher, &long, last, expected, &cuts, batch), Err(DecryptError));
        // One bit flipped.
        let mut flipped = body.clone();
        flipped[cut.index(body.len())] ^= 0x80;
        prop_assert_eq!(split(&cipher, &flipped, last, expected, &cuts, batch), Err(DecryptError));
    }
}

#[test]
fn lengths_no_run_of_frames_has_are_refused() {
    // 3 frames of 4096 + 16 bytes: the last holds 17..=4112 bytes.
    let sealed = 4096 + format_v2::TAG_LEN as u64;
    let run = |len| v2::FrameRun::new(4096, 0, 2, len, true);
    assert!(run(2 * sealed + 16).is_ok());
    assert!(run(3 * sealed).is_ok());
    assert!(run(2 * sealed + 15).is_err());
    assert!(run(3 * sealed + 1).is_err());
    // A run that ends before it starts.
    assert!(v2::FrameRun::new(4096, 3, 2, sealed, true).is_err());
}
