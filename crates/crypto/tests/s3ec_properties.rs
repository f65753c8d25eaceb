//! Properties of the S3 Encryption Client content cipher, checked against
//! RustCrypto's one-shot `aes-gcm` as the reference: the sequential
//! encryptor writes exactly its ciphertext and tag, the decryptor takes any
//! chunking, runs decrypt in any order and combine to the same tag, and any
//! change to the body fails.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use atrest_crypto::s3ec::{derive_v3, new_v3, ContentCipher, Decryptor, Encryptor, Runs};
use atrest_crypto::DataKey;
use atrest_format::s3ec::{Content, V3_AAD, V3_IV};
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;

fn reference(key: &[u8; 32], iv: &[u8; 12], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .encrypt(Nonce::from_slice(iv), Payload { msg: plain, aad })
        .unwrap()
}

fn encrypt(cipher: ContentCipher, plain: &[u8], chunk: usize) -> Vec<u8> {
    let mut enc = Encryptor::new(cipher, plain.len() as u64).unwrap();
    let mut body = Vec::new();
    for piece in plain.chunks(chunk.max(1)) {
        enc.update(piece, &mut body).unwrap();
    }
    enc.finish(&mut body).unwrap();
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn v3_encryptor_matches_one_shot_gcm(
        key in any::<[u8; 32]>(),
        seed in any::<u64>(),
        plain in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..700,
    ) {
        let data_key = DataKey::from_slice(&key).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let (cipher, message_id, commitment) = new_v3(&data_key, &mut rng);
        let derived = derive_v3(&data_key, &message_id);
        prop_assert_eq!(derived.commitment, commitment);
        let body = encrypt(cipher, &plain, chunk);
        prop_assert_eq!(&body, &reference(derived.expose_content_key(), &V3_IV, &V3_AAD, &plain));
    }

    #[test]
    fn v2_round_trip_in_any_chunking(
        key in any::<[u8; 32]>(),
        iv in any::<[u8; 12]>(),
        plain in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..700,
        read_chunk in 1usize..700,
    ) {
        let data_key = DataKey::from_slice(&key).unwrap();
        let content = Content::Gcm { iv };
        let body = encrypt(ContentCipher::new(&data_key, &content).unwrap(), &plain, chunk);
        prop_assert_eq!(&body, &reference(&key, &iv, &[], &plain));
        let mut dec = Decryptor::new(ContentCipher::new(&data_key, &content).unwrap());
        let mut out = Vec::new();
        for piece in body.chunks(read_chunk) {
            dec.update(piece, &mut out).unwrap();
        }
        prop_assert_eq!(dec.finish().unwrap(), plain.len() as u64);
        prop_assert_eq!(out, plain);
    }

    #[test]
    fn runs_in_any_order_verify_and_any_flip_fails(
        key in any::<[u8; 32]>(),
        message_id in any::<[u8; 28]>(),
        plain in proptest::collection::vec(any::<u8>(), 1..4000),
        blocks_per_run in 1usize..40,
        flip in any::<prop::sample::Index>(),
        order_seed in any::<u64>(),
    ) {
        let data_key = DataKey::from_slice(&key).unwrap();
        let commitment = derive_v3(&data_key, &message_id).commitment;
        let content = Content::Committed { message_id, commitment };
        let cipher = ContentCipher::new(&data_key, &content).unwrap();
        let body = encrypt(ContentCipher::new(&data_key, &content).unwrap(), &plain, 4096);
        let run = blocks_per_run * 16;
        let open = |body: &[u8]| {
            let (ct, tag) = body.split_at(body.len() - 16);
            let mut ct = ct.to_vec();
            let mut runs: Vec<(usize, &mut [u8])> = ct.chunks_mut(run).enumerate().collect();
            // A fixed shuffle: rotate by the seed.
            let n = runs.len();
            runs.rotate_left((order_seed as usize) % n.max(1));
            let mut hashes: Vec<_> = runs
                .into_iter()
                .map(|(i, c)| (i, cipher.open_run((i * run) as u64, c)))
                .collect();
            hashes.sort_by_key(|(i, _)| *i);
            let hashes: Vec<_> = hashes.into_iter().map(|(_, h)| h).collect();
            cipher.verify(&hashes, tag).map(|()| ct)
        };
        prop_assert_eq!(open(&body).unwrap(), plain);
        let mut bad = body.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 1;
        prop_assert!(open(&bad).is_err());
    }

    #[test]
    fn seal_runs_give_the_sequential_tag(
        key in any::<[u8; 32]>(),
        iv in any::<[u8; 12]>(),
        plain in proptest::collection::vec(any::<u8>(), 0..4000),
        blocks_per_run in 1usize..40,
    ) {
        let data_key = DataKey::from_slice(&key).unwrap();
        let content = Content::Gcm { iv };
        let cipher = ContentCipher::new(&data_key, &content).unwrap();
        let run = blocks_per_run * 16;
        let mut ct = plain.clone();
        let hashes: Vec<_> = ct
            .chunks_mut(run)
            .enumerate()
            .map(|(i, c)| cipher.seal_run((i * run) as u64, c))
            .collect();
        ct.extend_from_slice(&cipher.tag(&hashes).unwrap());
        prop_assert_eq!(ct, reference(&key, &iv, &[], &plain));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn runs_merged_in_any_order_verify_only_when_they_cover_the_body(
        key in any::<[u8; 32]>(),
        iv in any::<[u8; 12]>(),
        plain in proptest::collection::vec(any::<u8>(), 0..3000),
        blocks_per_run in 1usize..20,
        order in any::<u64>(),
        drop_one in any::<bool>(),
        dup_one in any::<bool>(),
    ) {
        let data_key = DataKey::from_slice(&key).unwrap();
        let cipher = ContentCipher::new(&data_key, &Content::Gcm { iv }).unwrap();
        let body = encrypt(ContentCipher::new(&data_key, &Content::Gcm { iv }).unwrap(), &plain, 999);
        let (ct, tag) = body.split_at(plain.len());
        let run = blocks_per_run * 16;
        let mut ct = ct.to_vec();
        let mut pieces: Vec<(u64, _)> = ct
            .chunks_mut(run)
            .enumerate()
            .map(|(i, c)| ((i * run) as u64, cipher.open_run((i * run) as u64, c)))
            .collect();
        let n = pieces.len();
        if n > 0 {
            pieces.rotate_left(order as usize % n);
            // Swap a pair chosen by the seed too.
            pieces.swap(0, (order >> 32) as usize % n);
        }
        let mut runs = Runs::default();
        let mut broken = false;
        if drop_one && n > 0 {
            pieces.pop();
            broken = true;
        }
        for (i, (offset, h)) in pieces.iter().enumerate() {
            runs.insert(&cipher, *offset, *h).unwrap();
            if dup_one && i == 0 && h.len > 0 {
                prop_assert!(runs.insert(&cipher, *offset, *h).is_err());
            }
        }
        let result = runs.verify(&cipher, plain.len() as u64, tag);
        prop_assert_eq!(result.is_ok(), !broken);
        if !broken {
            prop_assert_eq!(ct, plain);
        }
    }
}

#[test]
fn a_partial_block_inside_the_runs_is_refused() {
    let data_key = DataKey::from_slice(&[1; 32]).unwrap();
    let cipher = ContentCipher::new(&data_key, &Content::Gcm { iv: [2; 12] }).unwrap();
    let mut a = [0u8; 15];
    let mut b = [0u8; 16];
    let ha = cipher.seal_run(0, &mut a);
    let hb = cipher.seal_run(15, &mut b);
    assert!(cipher.tag(&[ha, hb]).is_err());
}

#[test]
fn the_gcm_limit_is_enforced_up_front() {
    let data_key = DataKey::from_slice(&[1; 32]).unwrap();
    let content = Content::Gcm { iv: [2; 12] };
    let limit = atrest_format::s3ec::MAX_PLAINTEXT_LEN;
    assert!(Encryptor::new(ContentCipher::new(&data_key, &content).unwrap(), limit).is_ok());
    assert!(Encryptor::new(ContentCipher::new(&data_key, &content).unwrap(), limit + 1).is_err());
    let mut enc = Encryptor::new(ContentCipher::new(&data_key, &content).unwrap(), 3).unwrap();
    let mut out = Vec::new();
    assert!(enc.update(&[0; 4], &mut out).is_err());
    enc.update(&[0; 2], &mut out).unwrap();
    assert!(enc.finish(&mut out).is_err());
}

#[test]
fn cbc_content_has_no_gcm_cipher() {
    let data_key = DataKey::from_slice(&[1; 32]).unwrap();
    assert!(ContentCipher::new(&data_key, &Content::Cbc { iv: [0; 16] }).is_err());
}
