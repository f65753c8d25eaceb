//! Properties of the S3 Encryption Client metadata codec: what it encodes
//! parses back unchanged (in the object or split into an instruction file),
//! and every kind of damage or mixing is refused with the error naming it.

use std::collections::BTreeMap;

use atrest_format::s3ec::{
    self, entry, Content, Envelope, Location, Placement, Policy, S3ecError, Version, WrapAlgorithm,
    CEK_ALG_CONTEXT_KEY,
};
use proptest::prelude::*;

fn user_context() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-z][a-z0-9:_-]{0,12}", "[ -~]{0,20}", 0..4)
        .prop_filter("no reserved keys", |m| {
            m.keys().all(|k| !s3ec::is_reserved_context_key(k))
        })
}

fn v3() -> impl Strategy<Value = Envelope> {
    (
        proptest::collection::vec(any::<u8>(), 1..300),
        any::<[u8; 28]>(),
        any::<[u8; 28]>(),
        user_context(),
    )
        .prop_map(|(key, id, commitment, ctx)| Envelope::v3_kms(key, id, commitment, ctx).unwrap())
}

fn v2() -> impl Strategy<Value = Envelope> {
    (
        proptest::collection::vec(any::<u8>(), 1..300),
        any::<[u8; 12]>(),
        user_context(),
    )
        .prop_map(|(key, iv, mut ctx)| {
            ctx.insert(CEK_ALG_CONTEXT_KEY.into(), s3ec::GCM_CONTENT_NAME.into());
            Envelope {
                version: Version::V2,
                wrap: WrapAlgorithm::KmsContext,
                wrapped_key: key,
                content: Content::Gcm { iv },
                context: ctx,
                plaintext_len: None,
                instruction_file: false,
            }
        })
}

fn object_map(e: &Envelope) -> BTreeMap<String, String> {
    e.encode(Placement::Object).object.into_iter().collect()
}

fn parse(m: &BTreeMap<String, String>) -> Result<Envelope, S3ecError> {
    s3ec::parse(m, None, Policy::default())
}

const V3_NAMES: [&str; 7] = [
    "x-amz-3", "x-amz-c", "x-amz-w", "x-amz-d", "x-amz-i", "x-amz-t", "x-amz-m",
];
const V2_NAMES: [&str; 7] = [
    "x-amz-key",
    "x-amz-key-v2",
    "x-amz-wrap-alg",
    "x-amz-matdesc",
    "x-amz-iv",
    "x-amz-cek-alg",
    "x-amz-tag-len",
];

proptest! {
    #[test]
    fn v3_round_trips_in_the_object(e in v3()) {
        let m = object_map(&e);
        prop_assert_eq!(s3ec::locate(&m), Location::Object);
        prop_assert_eq!(parse(&m).unwrap(), e);
    }

    #[test]
    fn v3_round_trips_through_an_instruction_file(e in v3()) {
        let enc = e.encode(Placement::InstructionFile);
        let object: BTreeMap<String, String> = enc.object.into_iter().collect();
        prop_assert_eq!(s3ec::locate(&object), Location::InstructionFile);
        let file = enc.instruction_file.unwrap();
        let parsed = s3ec::parse(&object, Some(&file), Policy::default()).unwrap();
        prop_assert!(parsed.instruction_file);
        prop_assert_eq!(Envelope { instruction_file: false, ..parsed }, e);
    }

    #[test]
    fn v2_round_trips(e in v2()) {
        prop_assert_eq!(parse(&object_map(&e)).unwrap(), e);
    }

    #[test]
    fn any_v3_entry_in_v2_metadata_is_mixing(e in v2(), which in 0..7usize, value in "[ -~]{0,30}") {
        let mut m = object_map(&e);
        m.insert(V3_NAMES[which].into(), value);
        prop_assert_eq!(parse(&m).unwrap_err(), S3ecError::MixedVersions);
    }

    #[test]
    fn any_v2_entry_in_v3_metadata_is_mixing(e in v3(), which in 0..7usize, value in "[ -~]{0,30}") {
        let mut m = object_map(&e);
        m.insert(V2_NAMES[which].into(), value);
        prop_assert_eq!(parse(&m).unwrap_err(), S3ecError::MixedVersions);
    }

    #[test]
    fn damaged_base64_is_refused(e in v3(), which in 0..3usize, junk in "[!*.~ ]") {
        let name = ["x-amz-3", "x-amz-d", "x-amz-i"][which];
        let mut m = object_map(&e);
        let v = m.get_mut(name).unwrap();
        v.insert_str(v.len() / 2, &junk);
        prop_assert_eq!(parse(&m).unwrap_err(), S3ecError::BadBase64(name));
    }

    #[test]
    fn damaged_json_is_refused(e in v3(), cut in 1usize..10) {
        let mut m = object_map(&e);
        let v = m.get_mut("x-amz-t").unwrap();
        v.truncate(v.len().saturating_sub(cut));
        prop_assert_eq!(parse(&m).unwrap_err(), S3ecError::BadJson("x-amz-t"));
    }

    #[test]
    fn wrong_lengths_are_refused(e in v3(), which in 0..2usize, len in 0usize..40) {
        prop_assume!(len != 28);
        let name = ["x-amz-d", "x-amz-i"][which];
        let mut m = object_map(&e);
        m.insert(name.into(), base64_of(&vec![7; len]));
        prop_assert_eq!(parse(&m).unwrap_err(), S3ecError::BadLength(name));
    }

    #[test]
    fn arbitrary_entries_never_panic(
        entries in proptest::collection::btree_map(
            prop::sample::select([&V3_NAMES[..], &V2_NAMES[..], &["x-amz-crypto-instr-file", "x-amz-unencrypted-content-length", "other"]].concat()),
            "[ -~]{0,60}",
            0..10,
        ),
        file in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        allow_legacy in any::<bool>(),
    ) {
        let m: BTreeMap<String, String> = entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let _ = s3ec::locate(&m);
        let _ = s3ec::parse(&m, file.as_deref(), Policy { allow_legacy });
    }
}

fn base64_of(bytes: &[u8]) -> String {
    // Encode through the codec itself: a V2 envelope's IV entry.
    let mut e = Envelope::v3_kms(vec![1], [0; 28], [0; 28], BTreeMap::new()).unwrap();
    e.wrapped_key = bytes.to_vec();
    if bytes.is_empty() {
        return String::new();
    }
    object_map(&e).remove("x-amz-3").unwrap()
}

fn python_v2() -> BTreeMap<String, String> {
    [
        ("x-amz-key-v2", "AQIDBA=="),
        ("x-amz-wrap-alg", "kms+context"),
        (
            "x-amz-matdesc",
            r#"{"aws:x-amz-cek-alg": "AES/GCM/NoPadding"}"#,
        ),
        ("x-amz-iv", "IFS/wSObi2OSVcWn"),
        ("x-amz-cek-alg", "AES/GCM/NoPadding"),
        ("x-amz-tag-len", "128"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn ctr_where_gcm_is_expected_is_refused_even_with_legacy() {
    let mut m = python_v2();
    m.insert(entry::CEK_ALG.into(), "AES/CTR/NoPadding".into());
    for allow_legacy in [false, true] {
        assert_eq!(
            s3ec::parse(&m, None, Policy { allow_legacy }).unwrap_err(),
            S3ecError::UnexpectedContentAlgorithm
        );
    }
}

#[test]
fn cbc_needs_legacy_and_a_context_that_agrees() {
    let mut m = python_v2();
    m.remove(entry::TAG_LEN);
    m.insert(entry::CEK_ALG.into(), s3ec::CBC_CONTENT_NAME.into());
    m.insert(entry::IV.into(), "AAAAAAAAAAAAAAAAAAAAAA==".into());
    // The swap: the context (bound by KMS) still says GCM.
    assert_eq!(
        s3ec::parse(&m, None, Policy { allow_legacy: true }).unwrap_err(),
        S3ecError::CekAlgMismatch
    );
    m.insert(
        entry::MATDESC.into(),
        r#"{"aws:x-amz-cek-alg": "AES/CBC/PKCS5Padding"}"#.into(),
    );
    assert_eq!(parse(&m).unwrap_err(), S3ecError::LegacyNotAllowed);
    let e = s3ec::parse(&m, None, Policy { allow_legacy: true }).unwrap();
    assert!(matches!(e.content, Content::Cbc { .. }));
    // Legacy kms wrap, no context binding the algorithm: CBC still needs the flag.
    m.insert(entry::WRAP_ALG.into(), "kms".into());
    m.insert(entry::MATDESC.into(), r#"{"kms_cmk_id": "k"}"#.into());
    assert_eq!(parse(&m).unwrap_err(), S3ecError::LegacyNotAllowed);
}

#[test]
fn v3_content_algorithm_must_be_115_and_agree_with_the_context() {
    let e = Envelope::v3_kms(vec![1; 10], [1; 28], [2; 28], BTreeMap::new()).unwrap();
    for bad in ["AES/GCM/NoPadding", "AES/CBC/PKCS5Padding", "116", "0x73"] {
        let mut m = object_map(&e);
        m.insert(entry::CONTENT_V3.into(), bad.into());
        assert_eq!(
            parse(&m).unwrap_err(),
            S3ecError::UnexpectedContentAlgorithm
        );
    }
    let mut m = object_map(&e);
    m.insert(
        entry::CONTEXT_V3.into(),
        r#"{"aws:x-amz-cek-alg":"AES/GCM/NoPadding"}"#.into(),
    );
    assert_eq!(parse(&m).unwrap_err(), S3ecError::CekAlgMismatch);
    m.insert(entry::CONTEXT_V3.into(), "{}".into());
    assert_eq!(parse(&m).unwrap_err(), S3ecError::CekAlgMismatch);
    m.remove(entry::CONTEXT_V3);
    assert_eq!(parse(&m).unwrap_err(), S3ecError::Missing("x-amz-t"));
}

#[test]
fn instruction_files_hold_only_what_they_may() {
    let e = Envelope::v3_kms(vec![1; 10], [1; 28], [2; 28], BTreeMap::new()).unwrap();
    let enc = e.encode(Placement::InstructionFile);
    let object: BTreeMap<String, String> = enc.object.into_iter().collect();
    let file: BTreeMap<String, String> =
        serde_json::from_slice(&enc.instruction_file.unwrap()).unwrap();
    let with = |k: &str, v: &str| {
        let mut f = file.clone();
        f.insert(k.into(), v.into());
        to_json(&f)
    };
    let p = |body: &[u8]| s3ec::parse(&object, Some(body), Policy::default());
    assert!(p(&to_json(&file)).is_ok());
    // Java's marker is allowed.
    assert!(p(&with(entry::INSTRUCTION_FILE, "")).is_ok());
    assert_eq!(
        p(&with("x-amz-d", "AAAA")).unwrap_err(),
        S3ecError::MisplacedEntry("x-amz-d".into())
    );
    assert_eq!(
        p(&with("x-amz-unencrypted-content-length", "1")).unwrap_err(),
        S3ecError::UnknownInstructionEntry("x-amz-unencrypted-content-length".into())
    );
    assert_eq!(
        p(&with("x-amz-key-v2", "AAAA")).unwrap_err(),
        S3ecError::MixedVersions
    );
    assert_eq!(p(b"[1]").unwrap_err(), S3ecError::BadInstructionFile);
    assert_eq!(
        p(b"{\"x-amz-3\":").unwrap_err(),
        S3ecError::BadInstructionFile
    );
    // An entry in both places.
    let mut both = object.clone();
    both.insert("x-amz-w".into(), "12".into());
    assert_eq!(
        s3ec::parse(&both, Some(&to_json(&file)), Policy::default()).unwrap_err(),
        S3ecError::MisplacedEntry("x-amz-w".into())
    );
    // V2 in an instruction file: the object must not hold content entries.
    let v2 = python_v2();
    let empty = BTreeMap::new();
    assert_eq!(s3ec::locate(&empty), Location::None);
    assert!(s3ec::parse(&empty, Some(&to_json(&v2)), Policy::default()).is_ok());
    let mut with_iv = BTreeMap::new();
    with_iv.insert("x-amz-iv".to_owned(), "IFS/wSObi2OSVcWn".to_owned());
    let mut rest = v2.clone();
    rest.remove("x-amz-iv");
    assert_eq!(
        s3ec::parse(&with_iv, Some(&to_json(&rest)), Policy::default()).unwrap_err(),
        S3ecError::MisplacedEntry("x-amz-iv".into())
    );
}

#[test]
fn repeated_json_keys_are_refused() {
    let mut m = python_v2();
    m.insert(
        entry::MATDESC.into(),
        r#"{"aws:x-amz-cek-alg": "AES/GCM/NoPadding", "aws:x-amz-cek-alg": "AES/GCM/NoPadding"}"#
            .into(),
    );
    assert_eq!(parse(&m).unwrap_err(), S3ecError::BadJson("x-amz-matdesc"));
}

#[test]
fn writing_refuses_reserved_and_non_ascii_context() {
    for (k, v) in [
        ("aws:x-amz-cek-alg", "115"),
        ("kms_cmk_id", "x"),
        ("k", "é"),
        ("ü", "v"),
    ] {
        let ctx = [(k.to_owned(), v.to_owned())].into_iter().collect();
        assert!(matches!(
            Envelope::v3_kms(vec![1], [0; 28], [0; 28], ctx),
            Err(S3ecError::BadContext(_))
        ));
    }
}

#[test]
fn expected_context_pairs_are_checked() {
    let ctx = [("team".to_owned(), "a".to_owned())].into_iter().collect();
    let e = Envelope::v3_kms(vec![1], [0; 28], [0; 28], ctx).unwrap();
    assert!(s3ec::check_expected_context(&e, [("team", "a")]).is_ok());
    assert!(s3ec::check_expected_context(&e, []).is_ok());
    assert!(s3ec::check_expected_context(&e, [("team", "b")]).is_err());
    assert!(s3ec::check_expected_context(&e, [("other", "a")]).is_err());
    assert!(s3ec::check_expected_context(&e, [("aws:x-amz-cek-alg", "115")]).is_err());
}

#[test]
fn nothing_derived_from_the_plaintext_is_written() {
    let mut e = Envelope::v3_kms(vec![1], [0; 28], [0; 28], BTreeMap::new()).unwrap();
    e.plaintext_len = Some(12345);
    let names: Vec<String> = e
        .encode(Placement::Object)
        .object
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        names,
        ["x-amz-c", "x-amz-3", "x-amz-w", "x-amz-d", "x-amz-i", "x-amz-t"]
    );
}

fn to_json(m: &BTreeMap<String, String>) -> Vec<u8> {
    serde_json::to_vec(m).unwrap()
}
