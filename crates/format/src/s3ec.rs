//! The AWS S3 Encryption Client's object metadata (V1, V2, V3), as a pure
//! codec: entries in, a validated [`Envelope`] out, and back.
//!
//! An S3 Encryption Client object has no header: its body is one AES-GCM
//! stream (ciphertext followed by a 16-byte tag) over the whole plaintext,
//! and everything needed to decrypt it sits in the object's user metadata
//! (`x-amz-meta-…`, given here without that prefix), or in an *instruction
//! file*, a separate object `KEY.instruction` whose body is a JSON map of the
//! same entries.
//!
//! | | V1 (legacy) | V2 | V3 (key-committing) |
//! |---|---|---|---|
//! | wrapped key | `x-amz-key` | `x-amz-key-v2` | `x-amz-3` |
//! | wrap algorithm | (`x-amz-wrap-alg`) | `x-amz-wrap-alg` | `x-amz-w` |
//! | stored context | `x-amz-matdesc` | `x-amz-matdesc` | `x-amz-t` (KMS) or `x-amz-m` |
//! | content algorithm | CBC | `x-amz-cek-alg` | `x-amz-c` = `115` |
//! | IV | `x-amz-iv` (16 bytes) | `x-amz-iv` (12 bytes) | fixed, see [`V3_IV`] |
//! | commitment | – | – | `x-amz-d`, message id `x-amz-i` |
//!
//! [`parse`] is strict where the clients are lenient, because the metadata is
//! not authenticated by anything but the KMS context:
//! - entries of V1/V2 and V3 together are refused ([`S3ecError::MixedVersions`]);
//! - base64 must be canonical standard base64 and of the exact length, JSON a
//!   flat object of strings without duplicate keys;
//! - the content algorithm must be the one the version allows: `115` for V3,
//!   `AES/GCM/NoPadding` for V2; CBC (V1, or V2 with `AES/CBC/PKCS5Padding`)
//!   only when [`Policy::allow_legacy`] is set; CTR or anything else never
//!   (the CVE-2020-8912 swap of GCM for CTR);
//! - the stored context's `aws:x-amz-cek-alg` must name the same content
//!   algorithm (KMS binds the context to the wrapped key, so this ties the
//!   algorithm to the key);
//! - an instruction file holds only S3EC entries and never V3's `x-amz-c`,
//!   `x-amz-d`, `x-amz-i` (they stay with the object); for V1/V2 the object
//!   then holds no content entries; no entry may be in both places.
//!
//! ```
//! use std::collections::BTreeMap;
//! use atrest_format::s3ec::{self, Content, Placement, Policy};
//!
//! let envelope = s3ec::Envelope::v3_kms(vec![9; 96], [1; 28], [2; 28], BTreeMap::new()).unwrap();
//! let object: BTreeMap<String, String> = envelope.encode(Placement::Object).object.into_iter().collect();
//! assert_eq!(s3ec::locate(&object), s3ec::Location::Object);
//! let parsed = s3ec::parse(&object, None, Policy::default()).unwrap();
//! assert_eq!(parsed, envelope);
//! assert!(matches!(parsed.content, Content::Committed { .. }));
//! ```

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::MAX_WRAPPED_KEY_LEN;

/// Names of the metadata entries (user metadata, without `x-amz-meta-`).
pub mod entry {
    /// V1 wrapped data key.
    pub const KEY_V1: &str = "x-amz-key";
    /// V2 wrapped data key.
    pub const KEY_V2: &str = "x-amz-key-v2";
    /// V1/V2 wrap algorithm.
    pub const WRAP_ALG: &str = "x-amz-wrap-alg";
    /// V1/V2 material description / KMS context (JSON).
    pub const MATDESC: &str = "x-amz-matdesc";
    /// V1/V2 content IV.
    pub const IV: &str = "x-amz-iv";
    /// V2 content algorithm.
    pub const CEK_ALG: &str = "x-amz-cek-alg";
    /// V2 tag length in bits.
    pub const TAG_LEN: &str = "x-amz-tag-len";
    /// Marks an instruction file (Java writes it; nobody checks it).
    pub const INSTRUCTION_FILE: &str = "x-amz-crypto-instr-file";
    /// V3 content algorithm (suite id in decimal).
    pub const CONTENT_V3: &str = "x-amz-c";
    /// V3 wrapped data key.
    pub const KEY_V3: &str = "x-amz-3";
    /// V3 material description (raw keyrings, JSON).
    pub const MATDESC_V3: &str = "x-amz-m";
    /// V3 KMS encryption context (JSON).
    pub const CONTEXT_V3: &str = "x-amz-t";
    /// V3 wrap algorithm (two digits).
    pub const WRAP_V3: &str = "x-amz-w";
    /// V3 key commitment.
    pub const COMMITMENT_V3: &str = "x-amz-d";
    /// V3 message id (HKDF salt).
    pub const MESSAGE_ID_V3: &str = "x-amz-i";
    /// Plaintext length, written by some old clients; informative only.
    pub const UNENCRYPTED_LEN: &str = "x-amz-unencrypted-content-length";
}

/// The metadata entry that marks an instruction file.
pub use entry::INSTRUCTION_FILE;
use entry::*;

/// Entries of V1 and V2.
const LEGACY_ENTRIES: [&str; 7] = [KEY_V1, KEY_V2, WRAP_ALG, MATDESC, IV, CEK_ALG, TAG_LEN];
/// Entries of V3.
const V3_ENTRIES: [&str; 7] = [
    KEY_V3,
    CONTENT_V3,
    WRAP_V3,
    COMMITMENT_V3,
    MESSAGE_ID_V3,
    CONTEXT_V3,
    MATDESC_V3,
];
/// V3 entries that always stay in the object's metadata.
const V3_OBJECT_ONLY: [&str; 3] = [CONTENT_V3, COMMITMENT_V3, MESSAGE_ID_V3];

/// The only keys an instruction file may hold (as the clients accept).
fn is_s3ec_entry(name: &str) -> bool {
    LEGACY_ENTRIES.contains(&name) || V3_ENTRIES.contains(&name) || name == INSTRUCTION_FILE
}

/// Suffix of the instruction file's key: `KEY.instruction`.
pub const INSTRUCTION_SUFFIX: &str = ".instruction";
/// The suite of V3 objects: AES-256-GCM, HKDF-SHA-512, key commitment.
pub const SUITE_V3: u16 = 0x0073;
/// Length of the V3 message id (the HKDF salt).
pub const MESSAGE_ID_LEN: usize = 28;
/// Length of the V3 key commitment.
pub const COMMITMENT_LEN: usize = 28;
/// Length of the V2 GCM IV.
pub const GCM_IV_LEN: usize = 12;
/// Length of the CBC IV.
pub const CBC_IV_LEN: usize = 16;
/// Length of the GCM tag ending the body.
pub const TAG_LEN_BYTES: usize = 16;
/// The V3 GCM IV: twelve `0x01` bytes (the key is unique per object).
pub const V3_IV: [u8; GCM_IV_LEN] = [1; GCM_IV_LEN];
/// The V3 additional authenticated data: the suite id, big-endian.
pub const V3_AAD: [u8; 2] = SUITE_V3.to_be_bytes();
/// Largest plaintext of one GCM stream: 2^36 - 32 bytes (2^32 - 2 blocks).
pub const MAX_PLAINTEXT_LEN: u64 = (1 << 36) - 32;
/// The context key binding the content algorithm (reserved, added on write).
pub const CEK_ALG_CONTEXT_KEY: &str = "aws:x-amz-cek-alg";
/// The context key of the legacy `kms` wrap (reserved).
pub const KMS_CMK_ID_CONTEXT_KEY: &str = "kms_cmk_id";

/// `x-amz-c` of V3 objects.
pub const V3_CONTENT_NAME: &str = "115";
/// `x-amz-cek-alg` of V2 GCM objects.
pub const GCM_CONTENT_NAME: &str = "AES/GCM/NoPadding";
/// `x-amz-cek-alg` of CBC objects.
pub const CBC_CONTENT_NAME: &str = "AES/CBC/PKCS5Padding";

/// The stored context: a JSON map of strings.
pub type Context = BTreeMap<String, String>;

/// What [`parse`] accepts beyond authenticated content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Accept unauthenticated CBC content (V1, or V2 with
    /// `AES/CBC/PKCS5Padding`).
    pub allow_legacy: bool,
}

/// The metadata format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `x-amz-key`.
    V1,
    /// `x-amz-key-v2`.
    V2,
    /// `x-amz-3` and the other compressed V3 entries.
    V3,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "V1",
            Version::V2 => "V2",
            Version::V3 => "V3",
        })
    }
}

/// How the data key is wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapAlgorithm {
    /// KMS with the stored context (`kms+context`, V3 `12`).
    KmsContext,
    /// KMS, legacy (`kms`): the stored material description is the context.
    Kms,
    /// A raw AES key (`AES/GCM`, V3 `02`).
    AesGcm,
    /// A raw AES key (`AESWrap`).
    AesWrap,
    /// A raw RSA key (`RSA-OAEP-SHA1`, V3 `22`).
    RsaOaepSha1,
    /// V1 without `x-amz-wrap-alg`: a client-side master key.
    ClientMasterKey,
}

impl WrapAlgorithm {
    /// Whether KMS unwraps the data key.
    pub fn is_kms(self) -> bool {
        matches!(self, WrapAlgorithm::KmsContext | WrapAlgorithm::Kms)
    }

    /// The V1/V2 name (`x-amz-wrap-alg`).
    pub fn name(self) -> &'static str {
        match self {
            WrapAlgorithm::KmsContext => "kms+context",
            WrapAlgorithm::Kms => "kms",
            WrapAlgorithm::AesGcm => "AES/GCM",
            WrapAlgorithm::AesWrap => "AESWrap",
            WrapAlgorithm::RsaOaepSha1 => "RSA-OAEP-SHA1",
            WrapAlgorithm::ClientMasterKey => "client master key",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "kms+context" => WrapAlgorithm::KmsContext,
            "kms" => WrapAlgorithm::Kms,
            "AES/GCM" => WrapAlgorithm::AesGcm,
            "AESWrap" => WrapAlgorithm::AesWrap,
            "RSA-OAEP-SHA1" => WrapAlgorithm::RsaOaepSha1,
            _ => return None,
        })
    }

    /// The V3 code (`x-amz-w`), for the algorithms V3 has.
    pub fn v3_code(self) -> Option<&'static str> {
        match self {
            WrapAlgorithm::KmsContext => Some("12"),
            WrapAlgorithm::AesGcm => Some("02"),
            WrapAlgorithm::RsaOaepSha1 => Some("22"),
            _ => None,
        }
    }

    fn from_v3_code(code: &str) -> Option<Self> {
        Some(match code {
            "12" => WrapAlgorithm::KmsContext,
            "02" => WrapAlgorithm::AesGcm,
            "22" => WrapAlgorithm::RsaOaepSha1,
            _ => return None,
        })
    }
}

/// How the content is encrypted, with its per-object parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// AES-256-CBC with PKCS#7 padding: unauthenticated, decrypt only.
    Cbc {
        /// `x-amz-iv`.
        iv: [u8; CBC_IV_LEN],
    },
    /// AES-256-GCM keyed by the data key (suite 0x0072), no AAD.
    Gcm {
        /// `x-amz-iv`.
        iv: [u8; GCM_IV_LEN],
    },
    /// AES-256-GCM keyed by HKDF-SHA-512 of the data key (suite 0x0073),
    /// IV [`V3_IV`], AAD [`V3_AAD`].
    Committed {
        /// `x-amz-i`: the HKDF salt.
        message_id: [u8; MESSAGE_ID_LEN],
        /// `x-amz-d`: to compare with the derived commitment.
        commitment: [u8; COMMITMENT_LEN],
    },
}

impl Content {
    /// The name stored as `x-amz-cek-alg` / `x-amz-c` and as the context's
    /// `aws:x-amz-cek-alg`.
    pub fn name(&self) -> &'static str {
        match self {
            Content::Cbc { .. } => CBC_CONTENT_NAME,
            Content::Gcm { .. } => GCM_CONTENT_NAME,
            Content::Committed { .. } => V3_CONTENT_NAME,
        }
    }

    /// Whether a tag authenticates the content.
    pub fn is_authenticated(&self) -> bool {
        !matches!(self, Content::Cbc { .. })
    }
}

/// Where [`locate`] found (or expects) the metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// No S3EC entries at all: not an S3EC object, or a V1/V2 object whose
    /// metadata is all in an instruction file.
    None,
    /// The wrapped key is in the object's metadata.
    Object,
    /// V3 content entries without the wrapped key: read `KEY.instruction`.
    InstructionFile,
}

/// Where [`Envelope::encode`] puts the metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// All in the object's metadata.
    Object,
    /// In an instruction file, except what must stay with the object.
    InstructionFile,
}

/// The validated metadata of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The metadata version.
    pub version: Version,
    /// How the data key is wrapped.
    pub wrap: WrapAlgorithm,
    /// The wrapped data key (KMS `CiphertextBlob` for KMS wraps).
    pub wrapped_key: Vec<u8>,
    /// The content algorithm and its parameters.
    pub content: Content,
    /// The stored context (`x-amz-t`, `x-amz-matdesc` or `x-amz-m`): for KMS
    /// wraps, exactly what KMS Decrypt gets.
    pub context: Context,
    /// `x-amz-unencrypted-content-length`, if present (not trusted).
    pub plaintext_len: Option<u64>,
    /// Whether the metadata came from an instruction file.
    pub instruction_file: bool,
}

/// Why S3EC metadata is refused. Each variant names the entry at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum S3ecError {
    /// Entries of V1/V2 and of V3 (or two wrapped keys) together.
    MixedVersions,
    /// A required entry is missing.
    Missing(&'static str),
    /// An entry is not canonical standard base64.
    BadBase64(&'static str),
    /// A decoded entry has the wrong length.
    BadLength(&'static str),
    /// An entry is not a JSON object of strings (or repeats a key).
    BadJson(&'static str),
    /// An entry has a value this format does not allow.
    BadValue(&'static str),
    /// The content algorithm is not the authenticated one this version uses
    /// (such as CTR, or CBC for V3).
    UnexpectedContentAlgorithm,
    /// CBC content without [`Policy::allow_legacy`].
    LegacyNotAllowed,
    /// The stored context's `aws:x-amz-cek-alg` is missing or names another
    /// content algorithm.
    CekAlgMismatch,
    /// The wrap algorithm is unknown.
    UnknownWrap,
    /// An entry is both in the object and in the instruction file, or an
    /// entry that must stay with the object is in the instruction file, or
    /// V1/V2 content entries are in the object while an instruction file
    /// holds the rest.
    MisplacedEntry(String),
    /// The instruction file holds a key that is no S3EC entry.
    UnknownInstructionEntry(String),
    /// The instruction file is not a JSON object of strings.
    BadInstructionFile,
    /// The metadata holds no wrapped key, and the instruction file that
    /// would hold it does not exist.
    NoInstructionFile,
    /// A context for writing holds a reserved key or non-ASCII text.
    BadContext(String),
}

impl fmt::Display for S3ecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3ecError::MixedVersions => {
                f.write_str("the metadata mixes entries of different S3 Encryption Client versions")
            }
            S3ecError::Missing(e) => write!(f, "the metadata lacks `{e}`"),
            S3ecError::BadBase64(e) => write!(f, "`{e}` is not valid base64"),
            S3ecError::BadLength(e) => write!(f, "`{e}` has the wrong length"),
            S3ecError::BadJson(e) => write!(f, "`{e}` is not a JSON object of strings"),
            S3ecError::BadValue(e) => write!(f, "`{e}` has a value this format does not allow"),
            S3ecError::UnexpectedContentAlgorithm => f.write_str(
                "the content algorithm is not the authenticated AES-GCM this version uses",
            ),
            S3ecError::LegacyNotAllowed => f.write_str(
                "the object is encrypted with unauthenticated AES-CBC (legacy); pass --allow-legacy to decrypt it",
            ),
            S3ecError::CekAlgMismatch => write!(
                f,
                "the stored context's `{CEK_ALG_CONTEXT_KEY}` does not match the content algorithm"
            ),
            S3ecError::UnknownWrap => f.write_str("unknown key wrap algorithm"),
            S3ecError::MisplacedEntry(e) => {
                write!(f, "`{e}` is in the wrong place (object metadata or instruction file)")
            }
            S3ecError::UnknownInstructionEntry(e) => {
                write!(f, "the instruction file holds `{e}`, which is no S3 Encryption Client entry")
            }
            S3ecError::BadInstructionFile => {
                f.write_str("the instruction file is not a JSON object of strings")
            }
            S3ecError::NoInstructionFile => f.write_str(
                "the metadata holds no wrapped key, and there is no instruction file holding one",
            ),
            S3ecError::BadContext(why) => write!(f, "invalid encryption context: {why}"),
        }
    }
}

impl core::error::Error for S3ecError {}

/// Where an object's S3EC metadata is, from its user metadata alone.
pub fn locate(object: &BTreeMap<String, String>) -> Location {
    let has = |e: &str| object.contains_key(e);
    if has(KEY_V1) || has(KEY_V2) || has(KEY_V3) {
        Location::Object
    } else if V3_OBJECT_ONLY.iter().any(|e| has(e)) {
        Location::InstructionFile
    } else if LEGACY_ENTRIES.iter().chain(&V3_ENTRIES).any(|e| has(e)) {
        // Content entries without a wrapped key: parse says which is missing.
        Location::Object
    } else {
        Location::None
    }
}

/// Parses and validates the metadata of one object: its user metadata
/// (`object`, names without `x-amz-meta-`) and, when [`locate`] asks for one
/// or the object has none, the body of its instruction file.
pub fn parse(
    object: &BTreeMap<String, String>,
    instruction: Option<&[u8]>,
    policy: Policy,
) -> Result<Envelope, S3ecError> {
    let Some(body) = instruction else {
        return parse_entries(&Entries::new(object), policy, false);
    };
    let file = parse_instruction_file(body)?;
    if let Some(e) = file.keys().find(|k| V3_OBJECT_ONLY.contains(&k.as_str())) {
        return Err(S3ecError::MisplacedEntry(e.clone()));
    }
    let mut merged = Entries::new(object);
    for (k, v) in &file {
        if k == INSTRUCTION_FILE {
            continue;
        }
        if merged.map.insert(k.as_str(), v.as_str()).is_some() {
            return Err(S3ecError::MisplacedEntry(k.clone()));
        }
    }
    let envelope = parse_entries(&merged, policy, true)?;
    if envelope.version != Version::V3 {
        // V1/V2 keep all content metadata in the instruction file.
        if let Some(e) = LEGACY_ENTRIES.iter().find(|e| object.contains_key(**e)) {
            return Err(S3ecError::MisplacedEntry((*e).to_string()));
        }
    }
    Ok(envelope)
}

/// Whether an object is an instruction file, by its user metadata (the
/// Java client marks its own) or its body: a JSON object of S3EC entries
/// that holds a wrapped key, as every instruction file does. Another object
/// merely named `KEY.instruction` (a user's own file, an atrest object, `{}`)
/// is not one, and is an object of its own.
pub fn is_instruction_file(metadata: &BTreeMap<String, String>, body: &[u8]) -> bool {
    metadata.contains_key(INSTRUCTION_FILE)
        || parse_instruction_file(body).is_ok_and(|map| {
            [KEY_V1, KEY_V2, KEY_V3]
                .iter()
                .any(|k| map.contains_key(*k))
        })
}

/// The body of an instruction file: a JSON object whose keys are all S3EC
/// entries.
fn parse_instruction_file(body: &[u8]) -> Result<BTreeMap<String, String>, S3ecError> {
    let map = json_map(body).ok_or(S3ecError::BadInstructionFile)?;
    if let Some(k) = map.keys().find(|k| !is_s3ec_entry(k)) {
        return Err(S3ecError::UnknownInstructionEntry(k.clone()));
    }
    Ok(map)
}

/// The entries being parsed, borrowed from the object and instruction file.
struct Entries<'a> {
    map: BTreeMap<&'a str, &'a str>,
}

impl<'a> Entries<'a> {
    fn new(object: &'a BTreeMap<String, String>) -> Self {
        Entries {
            map: object
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
    }

    fn get(&self, name: &'static str) -> Option<&'a str> {
        self.map.get(name).copied()
    }

    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    fn require(&self, name: &'static str) -> Result<&'a str, S3ecError> {
        self.get(name).ok_or(S3ecError::Missing(name))
    }

    fn bytes(&self, name: &'static str) -> Result<Vec<u8>, S3ecError> {
        STANDARD
            .decode(self.require(name)?)
            .map_err(|_| S3ecError::BadBase64(name))
    }

    fn array<const N: usize>(&self, name: &'static str) -> Result<[u8; N], S3ecError> {
        self.bytes(name)?
            .try_into()
            .map_err(|_| S3ecError::BadLength(name))
    }

    fn wrapped_key(&self, name: &'static str) -> Result<Vec<u8>, S3ecError> {
        let key = self.bytes(name)?;
        if key.is_empty() || key.len() > MAX_WRAPPED_KEY_LEN {
            return Err(S3ecError::BadLength(name));
        }
        Ok(key)
    }

    fn context(&self, name: &'static str) -> Result<Option<Context>, S3ecError> {
        self.get(name)
            .map(|s| json_map(s.as_bytes()).ok_or(S3ecError::BadJson(name)))
            .transpose()
    }
}

fn parse_entries(e: &Entries<'_>, policy: Policy, from_file: bool) -> Result<Envelope, S3ecError> {
    let legacy = LEGACY_ENTRIES.iter().any(|n| e.has(n));
    let v3 = V3_ENTRIES.iter().any(|n| e.has(n));
    if (legacy && v3) || (e.has(KEY_V1) && e.has(KEY_V2)) {
        return Err(S3ecError::MixedVersions);
    }
    let plaintext_len = e
        .get(UNENCRYPTED_LEN)
        .map(|s| parse_decimal(s).ok_or(S3ecError::BadValue(UNENCRYPTED_LEN)))
        .transpose()?;
    let mut envelope = if v3 {
        parse_v3(e)?
    } else if e.has(KEY_V2) {
        parse_v2(e)?
    } else if e.has(KEY_V1) {
        parse_v1(e)?
    } else if legacy {
        return Err(S3ecError::Missing(KEY_V2));
    } else {
        return Err(S3ecError::Missing(KEY_V3));
    };
    if !envelope.content.is_authenticated() && !policy.allow_legacy {
        return Err(S3ecError::LegacyNotAllowed);
    }
    check_cek_alg(&envelope)?;
    envelope.plaintext_len = plaintext_len;
    envelope.instruction_file = from_file;
    Ok(envelope)
}

fn parse_v3(e: &Entries<'_>) -> Result<Envelope, S3ecError> {
    if e.require(CONTENT_V3)? != V3_CONTENT_NAME {
        return Err(S3ecError::UnexpectedContentAlgorithm);
    }
    let wrapped_key = e.wrapped_key(KEY_V3)?;
    let wrap = WrapAlgorithm::from_v3_code(e.require(WRAP_V3)?).ok_or(S3ecError::UnknownWrap)?;
    let commitment = e.array(COMMITMENT_V3)?;
    let message_id = e.array(MESSAGE_ID_V3)?;
    // kms+context keeps its context in x-amz-t, raw keyrings in x-amz-m:
    // the other one must be absent.
    let (used, unused) = if wrap == WrapAlgorithm::KmsContext {
        (CONTEXT_V3, MATDESC_V3)
    } else {
        (MATDESC_V3, CONTEXT_V3)
    };
    if e.has(unused) {
        return Err(S3ecError::BadValue(unused));
    }
    let context = match e.context(used)? {
        Some(c) => c,
        None if wrap == WrapAlgorithm::KmsContext => return Err(S3ecError::Missing(CONTEXT_V3)),
        None => Context::new(),
    };
    Ok(Envelope {
        version: Version::V3,
        wrap,
        wrapped_key,
        content: Content::Committed {
            message_id,
            commitment,
        },
        context,
        plaintext_len: None,
        instruction_file: false,
    })
}

fn parse_v2(e: &Entries<'_>) -> Result<Envelope, S3ecError> {
    let wrapped_key = e.wrapped_key(KEY_V2)?;
    let wrap = WrapAlgorithm::from_name(e.require(WRAP_ALG)?).ok_or(S3ecError::UnknownWrap)?;
    let content = match e.require(CEK_ALG)? {
        GCM_CONTENT_NAME => {
            if e.get(TAG_LEN).is_some_and(|t| t != "128") {
                return Err(S3ecError::BadValue(TAG_LEN));
            }
            Content::Gcm { iv: e.array(IV)? }
        }
        CBC_CONTENT_NAME => {
            if e.has(TAG_LEN) {
                return Err(S3ecError::BadValue(TAG_LEN));
            }
            Content::Cbc { iv: e.array(IV)? }
        }
        _ => return Err(S3ecError::UnexpectedContentAlgorithm),
    };
    let context = match e.context(MATDESC)? {
        Some(c) => c,
        None if wrap == WrapAlgorithm::KmsContext => return Err(S3ecError::Missing(MATDESC)),
        None => Context::new(),
    };
    Ok(Envelope {
        version: Version::V2,
        wrap,
        wrapped_key,
        content,
        context,
        plaintext_len: None,
        instruction_file: false,
    })
}

fn parse_v1(e: &Entries<'_>) -> Result<Envelope, S3ecError> {
    let wrapped_key = e.wrapped_key(KEY_V1)?;
    let wrap = match e.get(WRAP_ALG) {
        Some(name) => WrapAlgorithm::from_name(name).ok_or(S3ecError::UnknownWrap)?,
        None => WrapAlgorithm::ClientMasterKey,
    };
    if e.get(CEK_ALG).is_some_and(|a| a != CBC_CONTENT_NAME) {
        return Err(S3ecError::UnexpectedContentAlgorithm);
    }
    if e.has(TAG_LEN) {
        return Err(S3ecError::BadValue(TAG_LEN));
    }
    Ok(Envelope {
        version: Version::V1,
        wrap,
        wrapped_key,
        content: Content::Cbc { iv: e.array(IV)? },
        context: e.context(MATDESC)?.ok_or(S3ecError::Missing(MATDESC))?,
        plaintext_len: None,
        instruction_file: false,
    })
}

/// `aws:x-amz-cek-alg` in the stored context names the content algorithm:
/// required with `kms+context` (the clients always add it), and checked
/// wherever it is present.
fn check_cek_alg(envelope: &Envelope) -> Result<(), S3ecError> {
    match envelope.context.get(CEK_ALG_CONTEXT_KEY) {
        Some(name) if name == envelope.content.name() => Ok(()),
        None if envelope.wrap != WrapAlgorithm::KmsContext => Ok(()),
        _ => Err(S3ecError::CekAlgMismatch),
    }
}

/// Canonical decimal: digits only, no leading zero (but "0"), fits in u64.
fn parse_decimal(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// A JSON object of string values with no repeated key, or `None`.
fn json_map(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    serde_json::from_slice::<StrictMap>(bytes).ok().map(|m| m.0)
}

/// A JSON object of strings that refuses a repeated key (serde_json would
/// keep the last one, and another reader the first).
struct StrictMap(BTreeMap<String, String>);

impl<'de> serde::Deserialize<'de> for StrictMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StrictMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<StrictMap, A::Error> {
                let mut map = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<String, String>()? {
                    if map.insert(k, v).is_some() {
                        return Err(serde::de::Error::custom("repeated key"));
                    }
                }
                Ok(StrictMap(map))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The encoded metadata: entries for the object's user metadata and, with
/// [`Placement::InstructionFile`], the instruction file's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// User metadata entries (names without `x-amz-meta-`).
    pub object: Vec<(String, String)>,
    /// The instruction file's JSON body, if any.
    pub instruction_file: Option<Vec<u8>>,
}

impl Envelope {
    /// A V3 envelope wrapped by KMS (`kms+context`). `user_context` is the
    /// caller's context: ASCII only and without reserved keys;
    /// `aws:x-amz-cek-alg` = `115` is added, and the result is both what
    /// KMS must get ([`Envelope::context`]) and what is stored.
    pub fn v3_kms(
        wrapped_key: Vec<u8>,
        message_id: [u8; MESSAGE_ID_LEN],
        commitment: [u8; COMMITMENT_LEN],
        user_context: Context,
    ) -> Result<Self, S3ecError> {
        if wrapped_key.is_empty() || wrapped_key.len() > MAX_WRAPPED_KEY_LEN {
            return Err(S3ecError::BadLength(KEY_V3));
        }
        let context = kms_context_for_writing(user_context, V3_CONTENT_NAME)?;
        Ok(Envelope {
            version: Version::V3,
            wrap: WrapAlgorithm::KmsContext,
            wrapped_key,
            content: Content::Committed {
                message_id,
                commitment,
            },
            context,
            plaintext_len: None,
            instruction_file: false,
        })
    }

    /// The plaintext length of an object of `object_len` bytes with this
    /// envelope, as `(min, max)`: exact for GCM (the body less its tag); for
    /// CBC within the 1..=16 bytes of padding. `None` if no plaintext has
    /// that length (a damaged object).
    pub fn plaintext_len(&self, object_len: u64) -> Option<(u64, u64)> {
        match self.content {
            Content::Cbc { .. } => (object_len >= 16 && object_len % 16 == 0)
                .then(|| (object_len - 16, object_len - 1)),
            Content::Gcm { .. } | Content::Committed { .. } => {
                gcm_plaintext_len(object_len).map(|n| (n, n))
            }
        }
    }

    /// The stored context without the reserved keys (`aws:x-amz-cek-alg`,
    /// `kms_cmk_id`): what the writer's caller gave.
    pub fn user_context(&self) -> impl Iterator<Item = (&str, &str)> {
        self.context
            .iter()
            .filter(|(k, _)| !is_reserved_context_key(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Encodes the envelope as metadata entries, placed as asked. Entries
    /// come in a fixed order; `plaintext_len` is never written (nothing
    /// derived from the plaintext is stored).
    pub fn encode(&self, placement: Placement) -> Encoded {
        let b64 = |b: &[u8]| STANDARD.encode(b);
        let json = |c: &Context| serde_json::to_string(c).expect("a map of strings serialises");
        let mut all: Vec<(&'static str, String)> = Vec::new();
        match self.version {
            Version::V3 => {
                all.push((CONTENT_V3, self.content.name().into()));
                all.push((KEY_V3, b64(&self.wrapped_key)));
                all.push((WRAP_V3, self.wrap.v3_code().unwrap_or("12").into()));
                if let Content::Committed {
                    message_id,
                    commitment,
                } = &self.content
                {
                    all.push((COMMITMENT_V3, b64(commitment)));
                    all.push((MESSAGE_ID_V3, b64(message_id)));
                }
                let context_entry = if self.wrap == WrapAlgorithm::KmsContext {
                    CONTEXT_V3
                } else {
                    MATDESC_V3
                };
                if self.wrap == WrapAlgorithm::KmsContext || !self.context.is_empty() {
                    all.push((context_entry, json(&self.context)));
                }
            }
            Version::V1 | Version::V2 => {
                let key_entry = if self.version == Version::V1 {
                    KEY_V1
                } else {
                    KEY_V2
                };
                all.push((key_entry, b64(&self.wrapped_key)));
                if self.wrap != WrapAlgorithm::ClientMasterKey {
                    all.push((WRAP_ALG, self.wrap.name().into()));
                }
                let iv: &[u8] = match &self.content {
                    Content::Cbc { iv } => iv,
                    Content::Gcm { iv } => iv,
                    Content::Committed { .. } => &[],
                };
                all.push((IV, b64(iv)));
                if self.version == Version::V2 {
                    all.push((CEK_ALG, self.content.name().into()));
                    if matches!(self.content, Content::Gcm { .. }) {
                        all.push((TAG_LEN, "128".into()));
                    }
                }
                if self.version == Version::V1
                    || self.wrap == WrapAlgorithm::KmsContext
                    || !self.context.is_empty()
                {
                    all.push((MATDESC, json(&self.context)));
                }
            }
        }
        let owned = |(k, v): (&str, String)| (k.to_string(), v);
        match placement {
            Placement::Object => Encoded {
                object: all.into_iter().map(owned).collect(),
                instruction_file: None,
            },
            Placement::InstructionFile => {
                let (object, file): (Vec<_>, Vec<_>) = all
                    .into_iter()
                    .partition(|(k, _)| V3_OBJECT_ONLY.contains(k));
                let file: BTreeMap<&str, String> = file.into_iter().collect();
                Encoded {
                    object: object.into_iter().map(owned).collect(),
                    instruction_file: Some(
                        serde_json::to_vec(&file).expect("a map of strings serialises"),
                    ),
                }
            }
        }
    }
}

/// Whether `key` is a context key the S3 Encryption Client reserves.
pub fn is_reserved_context_key(key: &str) -> bool {
    key == CEK_ALG_CONTEXT_KEY || key == KMS_CMK_ID_CONTEXT_KEY
}

/// The KMS context for writing: the caller's (ASCII, no reserved keys, as
/// the clients require) plus `aws:x-amz-cek-alg`.
fn kms_context_for_writing(mut user: Context, content_name: &str) -> Result<Context, S3ecError> {
    if let Some(k) = user.keys().find(|k| is_reserved_context_key(k)) {
        return Err(S3ecError::BadContext(alloc::format!(
            "`{k}` is reserved by the S3 Encryption Client"
        )));
    }
    if user.iter().any(|(k, v)| !k.is_ascii() || !v.is_ascii()) {
        return Err(S3ecError::BadContext(
            "the S3 Encryption Client allows only ASCII keys and values".into(),
        ));
    }
    user.insert(CEK_ALG_CONTEXT_KEY.into(), content_name.into());
    Ok(user)
}

/// Checks a reader's expected pairs against the stored context: none may be
/// a reserved key, and each must be stored with that value.
pub fn check_expected_context<'a>(
    envelope: &Envelope,
    expected: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), ExpectedContextError> {
    for (k, v) in expected {
        if is_reserved_context_key(k) {
            return Err(ExpectedContextError::Reserved(k.to_string()));
        }
        match envelope.context.get(k) {
            Some(stored) if stored == v => {}
            Some(_) => return Err(ExpectedContextError::Differs(k.to_string())),
            None => return Err(ExpectedContextError::Absent(k.to_string())),
        }
    }
    Ok(())
}

/// Why the stored context does not hold what the reader expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedContextError {
    /// The expected key is reserved by the S3 Encryption Client.
    Reserved(String),
    /// The key is stored with another value.
    Differs(String),
    /// The key is not stored.
    Absent(String),
}

impl fmt::Display for ExpectedContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedContextError::Reserved(k) => {
                write!(
                    f,
                    "`{k}` is reserved by the S3 Encryption Client and cannot be expected"
                )
            }
            ExpectedContextError::Differs(k) => {
                write!(f, "the encryption context has another value for `{k}`")
            }
            ExpectedContextError::Absent(k) => {
                write!(f, "the encryption context has no `{k}`")
            }
        }
    }
}

impl core::error::Error for ExpectedContextError {}

/// The body length of a plaintext of `plaintext_len` bytes under GCM.
pub fn gcm_body_len(plaintext_len: u64) -> u64 {
    plaintext_len + TAG_LEN_BYTES as u64
}

/// The plaintext length of a GCM body of `body_len` bytes, if it can be one.
pub fn gcm_plaintext_len(body_len: u64) -> Option<u64> {
    body_len
        .checked_sub(TAG_LEN_BYTES as u64)
        .filter(|&n| n <= MAX_PLAINTEXT_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plaintext_lengths_follow_the_content_algorithm() {
        let mut envelope =
            Envelope::v3_kms([9; 96].to_vec(), [1; 28], [2; 28], Context::new()).unwrap();
        assert_eq!(envelope.plaintext_len(16), Some((0, 0)));
        assert_eq!(envelope.plaintext_len(1016), Some((1000, 1000)));
        assert_eq!(envelope.plaintext_len(15), None);
        envelope.content = Content::Cbc { iv: [0; 16] };
        assert_eq!(envelope.plaintext_len(32), Some((16, 31)));
        assert_eq!(envelope.plaintext_len(16), Some((0, 15)));
        assert_eq!(envelope.plaintext_len(20), None);
        assert_eq!(envelope.plaintext_len(0), None);
    }

    #[test]
    fn decimal_is_canonical() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("17"), Some(17));
        assert_eq!(parse_decimal("017"), None);
        assert_eq!(parse_decimal("+1"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("99999999999999999999"), None);
    }

    #[test]
    fn json_rejects_repeats_and_non_strings() {
        assert!(json_map(br#"{"a":"1","a":"2"}"#).is_none());
        assert!(json_map(br#"{"a":1}"#).is_none());
        assert!(json_map(br#"["a"]"#).is_none());
        assert!(json_map(br#"{"a":"1"} x"#).is_none());
        assert_eq!(json_map(br#"{"a": "\u00e9"}"#), Some(map(&[("a", "é")])));
    }

    #[test]
    fn instruction_files_are_told_by_their_marker_or_a_wrapped_key() {
        let none = BTreeMap::new();
        let wrapped = br#"{"x-amz-key-v2":"AAAA","x-amz-wrap-alg":"kms+context"}"#;
        assert!(is_instruction_file(&none, wrapped));
        assert!(is_instruction_file(
            &none,
            br#"{"x-amz-3":"AAAA","x-amz-w":"12"}"#
        ));
        let marked = map(&[(INSTRUCTION_FILE, "")]);
        assert!(is_instruction_file(&marked, b"anything"));
        // Named so, but no envelope: a user's own object.
        for body in [
            &b"{}"[..],
            b"my notes",
            br#"{"x-amz-iv":"AAAA"}"#,
            br#"{"note":"x","x-amz-3":"A"}"#,
            b"\x02\x01binary",
        ] {
            assert!(!is_instruction_file(&none, body), "{body:?}");
        }
    }

    #[test]
    fn locate_by_entries() {
        assert_eq!(locate(&map(&[("other", "x")])), Location::None);
        assert_eq!(locate(&map(&[(KEY_V2, "x")])), Location::Object);
        assert_eq!(
            locate(&map(&[
                (CONTENT_V3, "115"),
                (COMMITMENT_V3, "x"),
                (MESSAGE_ID_V3, "y")
            ])),
            Location::InstructionFile
        );
    }
}
