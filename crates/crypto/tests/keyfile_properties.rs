//! Property tests of key-file wrapping: round trips for any key, data key and
//! context; every single-bit change of the wrapped key, any other context
//! and any other key fail; and agreement with an independent AES-256-GCM
//! (RustCrypto's `aes-gcm`) on the layout of docs/FORMAT.md.

use std::collections::BTreeMap;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use atrest_crypto::keyfile::KeyFileKey;
use atrest_crypto::DataKey;
use atrest_format::keyring::{Keyring, KEY_FILE_WRAPPED_LEN};
use atrest_format::v2::EncryptionContext;
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn context() -> impl Strategy<Value = EncryptionContext> {
    prop::collection::btree_map("[a-z][\\PC]{0,10}", "[\\PC]{0,16}", 0..5).prop_map(
        |m: BTreeMap<String, String>| {
            EncryptionContext::new(m)
                .unwrap()
                .with_keyring(Keyring::KeyFile)
                .unwrap()
        },
    )
}

fn wrap(kek: &[u8; 32], dk: &[u8; 32], ctx: &EncryptionContext, seed: u64) -> Vec<u8> {
    let kek = KeyFileKey::from_slice(kek).unwrap();
    let dk = DataKey::from_slice(dk).unwrap();
    kek.wrap(&dk, ctx, &mut ChaCha20Rng::seed_from_u64(seed))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trips(kek in any::<[u8; 32]>(), dk in any::<[u8; 32]>(), ctx in context(), seed in any::<u64>()) {
        let wrapped = wrap(&kek, &dk, &ctx, seed);
        prop_assert_eq!(wrapped.len(), KEY_FILE_WRAPPED_LEN);
        let back = KeyFileKey::from_slice(&kek).unwrap().unwrap(&wrapped, &ctx).unwrap();
        prop_assert_eq!(back.expose(), &dk);
    }

    #[test]
    fn every_bit_flip_fails(kek in any::<[u8; 32]>(), dk in any::<[u8; 32]>(), ctx in context()) {
        let wrapped = wrap(&kek, &dk, &ctx, 1);
        let kek = KeyFileKey::from_slice(&kek).unwrap();
        for bit in 0..wrapped.len() * 8 {
            let mut w = wrapped.clone();
            w[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(kek.unwrap(&w, &ctx).is_err(), "bit {}", bit);
        }
        for len in 0..wrapped.len() {
            prop_assert!(kek.unwrap(&wrapped[..len], &ctx).is_err());
        }
    }

    #[test]
    fn other_contexts_and_keys_fail(
        kek in any::<[u8; 32]>(),
        other_kek in any::<[u8; 32]>(),
        dk in any::<[u8; 32]>(),
        ctx in context(),
        other in context(),
    ) {
        let wrapped = wrap(&kek, &dk, &ctx, 2);
        if other != ctx {
            prop_assert!(KeyFileKey::from_slice(&kek).unwrap().unwrap(&wrapped, &other).is_err());
        }
        if other_kek != kek {
            prop_assert!(KeyFileKey::from_slice(&other_kek).unwrap().unwrap(&wrapped, &ctx).is_err());
        }
    }

    /// The layout as FORMAT.md states it, checked with another AES-GCM:
    /// nonce || ciphertext || tag, AAD = the context's encoding.
    #[test]
    fn agrees_with_an_independent_gcm(kek in any::<[u8; 32]>(), dk in any::<[u8; 32]>(), ctx in context(), nonce in any::<[u8; 12]>()) {
        let gcm = aes_gcm::Aes256Gcm::new(&kek.into());
        let aad = ctx.to_bytes();
        // Ours, opened by theirs.
        let wrapped = wrap(&kek, &dk, &ctx, 3);
        let mut buf = wrapped[12..44].to_vec();
        gcm.decrypt_in_place_detached(wrapped[..12].into(), &aad, &mut buf, wrapped[44..].into())
            .expect("aes-gcm opens atrest's wrap");
        prop_assert_eq!(&buf[..], &dk[..]);
        // Theirs, opened by ours.
        let mut sealed = dk.to_vec();
        let tag = gcm.encrypt_in_place_detached(&nonce.into(), &aad, &mut sealed).unwrap();
        let theirs = [&nonce[..], &sealed, &tag].concat();
        let back = KeyFileKey::from_slice(&kek).unwrap().unwrap(&theirs, &ctx).unwrap();
        prop_assert_eq!(back.expose(), &dk);
    }
}
