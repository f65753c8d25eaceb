//! The tokio adapters agree with the std ones and with the state machines.

use atrest_crypto::{async_io, v1, v2, DataKey, StreamError};
use atrest_format::v2::EncryptionContext;
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn key() -> DataKey {
    DataKey::from_slice(&[5; 32]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn v2_async_matches_std(plain in prop::collection::vec(any::<u8>(), 0..20_000), salt_seed in any::<u64>()) {
        use rand_core::SeedableRng;
        let make = || {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(salt_seed);
            let ctx = EncryptionContext::new([("a", "b")]).unwrap();
            v2::Encryptor::new(&key(), vec![1; 8], 12, ctx, &mut rng).unwrap()
        };
        let mut by_std = Vec::new();
        v2::encrypt_stream(make(), &plain[..], &mut by_std).unwrap();
        let mut by_async = Vec::new();
        let n = runtime().block_on(async_io::encrypt_v2(make(), &plain[..], &mut by_async)).unwrap();
        prop_assert_eq!(n, plain.len() as u64);
        prop_assert_eq!(&by_async, &by_std);

        let (header, plain_back) = runtime().block_on(async {
            let mut reader = &by_async[..];
            let header = async_io::read_header(&mut reader).await.unwrap();
            let mut out = Vec::new();
            let n = async_io::decrypt(&key(), &header, reader, &mut out).await.unwrap();
            assert_eq!(n, out.len() as u64);
            (header, out)
        });
        prop_assert_eq!(header.version(), 2);
        prop_assert_eq!(plain_back, plain);
    }

    #[test]
    fn v1_async_round_trip(plain in prop::collection::vec(any::<u8>(), 0..5_000), iv in any::<[u8; 8]>()) {
        let header = atrest_format::v1::Header::new(vec![7; 20], iv).unwrap();
        let mut object = Vec::new();
        runtime().block_on(async_io::encrypt_v1(&key(), &header, &plain[..], &mut object)).unwrap();
        let mut expected = Vec::new();
        header.encode(&mut expected);
        expected.extend(v1::encrypt(&key(), &iv, &plain));
        prop_assert_eq!(&object, &expected);
        let back = runtime().block_on(async {
            let mut reader = &object[..];
            let header = async_io::read_header(&mut reader).await.unwrap();
            let mut out = Vec::new();
            async_io::decrypt(&key(), &header, reader, &mut out).await.map(|_| out)
        }).unwrap();
        prop_assert_eq!(back, plain);
    }
}

#[test]
fn tampered_and_truncated_objects_fail_async() {
    let ctx = EncryptionContext::new([("a", "b")]).unwrap();
    let enc = v2::Encryptor::new(&key(), vec![1; 8], 12, ctx, &mut rand_core::OsRng).unwrap();
    let mut object = Vec::new();
    v2::encrypt_stream(enc, &[0u8; 10_000][..], &mut object).unwrap();
    let rt = runtime();
    let run = |bytes: Vec<u8>| {
        rt.block_on(async {
            let mut reader = &bytes[..];
            let header = async_io::read_header(&mut reader).await?;
            async_io::decrypt(&key(), &header, reader, tokio::io::sink()).await
        })
    };
    let mut flipped = object.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(matches!(run(flipped), Err(StreamError::Decrypt(_))));
    assert!(matches!(
        run(object[..object.len() - 1].to_vec()),
        Err(StreamError::Decrypt(_))
    ));
    assert!(matches!(
        run(object[..20].to_vec()),
        Err(StreamError::TruncatedHeader)
    ));
}
