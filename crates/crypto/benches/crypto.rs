//! In-process throughput of the atrest ciphers: `cargo bench -p atrest-crypto`.
//!
//! Every benchmark processes one buffer of `ATREST_BENCH_MIB` MiB (default
//! 64) per iteration, so criterion's throughput is the cipher's MiB/s:
//!
//! - `v2_encrypt` / `v2_decrypt`: [`v2::FrameCipher`] sealing and opening
//!   every frame in place, at 64 KiB and 1 MiB frames, on one thread and on
//!   two (the frames split between `std::thread::scope` threads: frames are
//!   independent);
//! - `v1_encrypt` / `v1_decrypt`: the streaming CBC [`v1::Encryptor`] and
//!   [`v1::Decryptor`] fed in 64 KiB and 1 MiB chunks (CBC encryption is
//!   serial by construction), and `v1_decrypt` over two threads with
//!   [`v1::decrypt_chunk_in_place`];
//! - `aead_seal` / `aead_open`: the two AES-256-GCM candidates on their own,
//!   RustCrypto `aes-gcm` and `aws-lc-rs`, at the same frame sizes;
//! - `cbc_encrypt`: the two AES-256-CBC candidates, RustCrypto `cbc` and
//!   `aws-lc-rs`, on 64 KiB chunks.
//!
//! `cargo xtask bench` runs these and reads the medians from
//! `target/criterion/*/*/*/new/estimates.json`.

use std::hint::black_box;
use std::time::Duration;

use atrest_crypto::{v1, v2, DataKey};
use atrest_format::v2::{EncryptionContext, Header, TAG_LEN};
use atrest_format::{parse_header, Header as AnyHeader, Parsed};
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Frame (v2) or chunk (v1) sizes: 64 KiB, the v2 default, and 1 MiB.
const SIZES: [(u8, &str); 2] = [(16, "64KiB"), (20, "1MiB")];
const THREADS: usize = 2;

fn buffer_len() -> usize {
    let mib = std::env::var("ATREST_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(64);
    mib * MIB
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect()
}

fn key() -> DataKey {
    DataKey::from_slice(&[0x42; 32]).unwrap()
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
    len: usize,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(len as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g
}

/// A v2 header and its frame cipher with frames of `2^exponent` bytes.
fn v2_cipher(exponent: u8) -> (Header, v2::FrameCipher) {
    let ctx = EncryptionContext::new([("bench", "atrest")]).unwrap();
    let enc =
        v2::Encryptor::new(&key(), vec![7; 160], exponent, ctx, &mut rand_core::OsRng).unwrap();
    let mut encoded = Vec::new();
    enc.header().encode(&mut encoded);
    let Parsed::Complete(AnyHeader::V2(header)) = parse_header(&encoded).unwrap() else {
        panic!("not a v2 header")
    };
    let cipher = v2::FrameCipher::new(&key(), &header).unwrap();
    (header, cipher)
}

/// Seals every frame of `body` (laid out as frames of `f + 16` bytes, the
/// last frame final) in place, frames `first..` of the object.
fn seal_frames(cipher: &v2::FrameCipher, first: u64, total: u64, body: &mut [u8]) {
    let f = cipher.frame_size();
    for (i, frame) in (first..).zip(body.chunks_mut(f + TAG_LEN)) {
        let (data, tag) = frame.split_at_mut(frame.len() - TAG_LEN);
        tag.copy_from_slice(&cipher.seal_frame_in_place(i, i + 1 == total, data));
    }
}

fn open_frames(cipher: &v2::FrameCipher, first: u64, total: u64, body: &mut [u8]) {
    let f = cipher.frame_size();
    for (i, frame) in (first..).zip(body.chunks_mut(f + TAG_LEN)) {
        cipher
            .open_frame_in_place(i, i + 1 == total, frame)
            .expect("authentic frame");
    }
}

/// Runs `work` over `body` split at frame boundaries between THREADS threads.
fn split_frames(
    cipher: &v2::FrameCipher,
    total: u64,
    body: &mut [u8],
    work: fn(&v2::FrameCipher, u64, u64, &mut [u8]),
) {
    let sealed = cipher.frame_size() + TAG_LEN;
    let per_thread = (total as usize).div_ceil(THREADS);
    std::thread::scope(|s| {
        for (t, part) in body.chunks_mut(per_thread * sealed).enumerate() {
            s.spawn(move || work(cipher, (t * per_thread) as u64, total, part));
        }
    });
}

fn bench_v2(c: &mut Criterion) {
    let len = buffer_len();
    let plain = plaintext(len);
    for (exponent, label) in SIZES {
        let (_, cipher) = v2_cipher(exponent);
        let f = cipher.frame_size();
        let total = len.div_ceil(f) as u64;
        // The body layout: frames of f bytes, each followed by room for its tag.
        let mut laid_out = Vec::with_capacity(len + total as usize * TAG_LEN);
        for chunk in plain.chunks(f) {
            laid_out.extend_from_slice(chunk);
            laid_out.extend_from_slice(&[0; TAG_LEN]);
        }
        let mut sealed = laid_out.clone();
        seal_frames(&cipher, 0, total, &mut sealed);

        let mut g = configure(c, "v2_encrypt", len);
        let mut buf = laid_out.clone();
        g.bench_function(format!("{label}/1thread"), |b| {
            b.iter(|| seal_frames(&cipher, 0, total, black_box(&mut buf)))
        });
        g.bench_function(format!("{label}/{THREADS}threads"), |b| {
            b.iter(|| split_frames(&cipher, total, black_box(&mut buf), seal_frames))
        });
        g.finish();

        let mut g = configure(c, "v2_decrypt", len);
        g.bench_function(format!("{label}/1thread"), |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| open_frames(&cipher, 0, total, buf),
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("{label}/{THREADS}threads"), |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| split_frames(&cipher, total, buf, open_frames),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

fn bench_v1(c: &mut Criterion) {
    let len = buffer_len();
    let plain = plaintext(len);
    let key = key();
    let iv = [9u8; 8];
    let ciphertext = v1::encrypt(&key, &iv, &plain);

    let mut g = configure(c, "v1_encrypt", len);
    for (exponent, label) in SIZES {
        let chunk = 1usize << exponent;
        let mut out = Vec::with_capacity(chunk + 16);
        g.bench_function(format!("{label}/1thread"), |b| {
            b.iter(|| {
                let mut enc = v1::Encryptor::new(&key, &iv);
                for piece in plain.chunks(chunk) {
                    out.clear();
                    enc.update(piece, &mut out);
                    black_box(&out);
                }
                out.clear();
                enc.finish(&mut out);
            })
        });
    }
    g.finish();

    let mut g = configure(c, "v1_decrypt", len);
    for (exponent, label) in SIZES {
        let chunk = 1usize << exponent;
        let mut out = Vec::with_capacity(chunk + 16);
        g.bench_function(format!("{label}/1thread"), |b| {
            b.iter(|| {
                let mut dec = v1::Decryptor::new(&key, &iv);
                for piece in ciphertext.chunks(chunk) {
                    out.clear();
                    dec.update(piece, &mut out);
                    black_box(&out);
                }
                out.clear();
                dec.finish(&mut out).unwrap();
            })
        });
        g.bench_function(format!("{label}/{THREADS}threads"), |b| {
            b.iter_batched_ref(
                || ciphertext.clone(),
                |buf| {
                    // Each chunk needs only the ciphertext block before it:
                    // take those first, then decrypt the halves in parallel.
                    let per_thread = (buf.len() / 16).div_ceil(THREADS) * 16;
                    let first_iv = atrest_format::v1::cbc_iv(&iv);
                    let prevs: Vec<[u8; 16]> = (0..buf.len())
                        .step_by(per_thread)
                        .map(|at| match at {
                            0 => first_iv,
                            _ => buf[at - 16..at].try_into().unwrap(),
                        })
                        .collect();
                    std::thread::scope(|s| {
                        for (part, prev) in buf.chunks_mut(per_thread).zip(&prevs) {
                            let key = &key;
                            s.spawn(move || {
                                let mut prev = *prev;
                                for piece in part.chunks_mut(chunk) {
                                    let next: [u8; 16] =
                                        piece[piece.len() - 16..].try_into().unwrap();
                                    v1::decrypt_chunk_in_place(key, &prev, piece);
                                    prev = next;
                                }
                            });
                        }
                    });
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn bench_aead(c: &mut Criterion) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

    let len = buffer_len();
    let key_bytes = [0x42u8; 32];
    let aad = [0x5au8; 128];
    let rust_crypto = aes_gcm::Aes256Gcm::new((&key_bytes).into());
    let aws_lc = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).unwrap());
    let nonce = |i: usize| {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&(i as u64).to_be_bytes());
        n
    };

    for (exponent, label) in SIZES {
        let f = 1usize << exponent;
        let mut buf = plaintext(len);

        let mut g = configure(c, "aead_seal", len);
        g.bench_function(format!("{label}/aes-gcm"), |b| {
            b.iter(|| {
                for (i, frame) in buf.chunks_mut(f).enumerate() {
                    let tag = rust_crypto
                        .encrypt_in_place_detached(&nonce(i).into(), &aad, frame)
                        .unwrap();
                    let _ = black_box(tag);
                }
            })
        });
        g.bench_function(format!("{label}/aws-lc-rs"), |b| {
            b.iter(|| {
                for (i, frame) in buf.chunks_mut(f).enumerate() {
                    let tag = aws_lc
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce(i)),
                            Aad::from(&aad),
                            frame,
                        )
                        .unwrap();
                    let _ = black_box(tag);
                }
            })
        });
        g.finish();

        // Frames sealed by each library: ciphertext followed by the tag.
        let plain = plaintext(len);
        let mut sealed = Vec::with_capacity(len + len / f * TAG_LEN);
        for (i, frame) in plain.chunks(f).enumerate() {
            let start = sealed.len();
            sealed.extend_from_slice(frame);
            let tag = aws_lc
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce(i)),
                    Aad::from(&aad),
                    &mut sealed[start..],
                )
                .unwrap();
            sealed.extend_from_slice(tag.as_ref());
        }

        let mut g = configure(c, "aead_open", len);
        g.bench_function(format!("{label}/aes-gcm"), |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| {
                    for (i, frame) in buf.chunks_mut(f + TAG_LEN).enumerate() {
                        let (data, tag) = frame.split_at_mut(f);
                        rust_crypto
                            .decrypt_in_place_detached(&nonce(i).into(), &aad, data, (&*tag).into())
                            .unwrap();
                    }
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("{label}/aws-lc-rs"), |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| {
                    for (i, frame) in buf.chunks_mut(f + TAG_LEN).enumerate() {
                        aws_lc
                            .open_in_place(
                                Nonce::assume_unique_for_key(nonce(i)),
                                Aad::from(&aad),
                                frame,
                            )
                            .unwrap();
                    }
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

/// AES-256-CBC encryption (serial by construction), the two candidates on
/// their own: RustCrypto `cbc` (block at a time) and AWS-LC's streaming CBC.
fn bench_cbc(c: &mut Criterion) {
    use aes::cipher::inout::InOutBuf;
    use aes::cipher::{BlockEncryptMut, KeyIvInit};
    use aws_lc_rs::cipher::{EncryptionContext, StreamingEncryptingKey, UnboundCipherKey, AES_256};

    let len = buffer_len();
    let key = [0x42u8; 32];
    let iv = [0x24u8; 16];
    let mut buf = plaintext(len);
    let chunk = 64 * KIB;
    let mut g = configure(c, "cbc_encrypt", len);
    g.bench_function("64KiB/cbc", |b| {
        b.iter(|| {
            let mut enc = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into());
            for piece in buf.chunks_mut(chunk) {
                let (blocks, _) = InOutBuf::from(piece).into_chunks();
                enc.encrypt_blocks_inout_mut(blocks);
            }
        })
    });
    let mut out = vec![0u8; chunk + 16];
    g.bench_function("64KiB/aws-lc-rs", |b| {
        b.iter(|| {
            let mut enc = StreamingEncryptingKey::less_safe_cbc_pkcs7(
                UnboundCipherKey::new(&AES_256, &key).unwrap(),
                EncryptionContext::Iv128(iv.into()),
            )
            .unwrap();
            for piece in buf.chunks(chunk) {
                black_box(enc.update(piece, &mut out).unwrap().written().len());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_aead, bench_cbc, bench_v2, bench_v1);
criterion_main!(benches);
