//! Thin adapter over `aws-sdk-kms` for atrest data keys.
//!
//! Plaintext data keys come back as [`atrest_crypto::DataKey`] (zeroized on
//! drop); the SDK's own copy of the plaintext is zeroized as soon as it has
//! been moved into one. The adapter takes a built [`aws_sdk_kms::Client`] and
//! never loads AWS configuration itself.
//!
//! ```no_run
//! # async fn example() -> Result<(), atrest_kms::KmsError> {
//! let config = aws_config::load_from_env().await;
//! let kms = atrest_kms::Kms::new(aws_sdk_kms::Client::new(&config));
//! let context = [("app".to_owned(), "demo".to_owned())];
//! let generated = kms.generate_data_key("alias/my-key", &context).await?;
//! // ... encrypt with generated.key, store generated.wrapped beside the data ...
//! let again = kms.decrypt(&generated.wrapped, &context).await?;
//! assert_eq!(again.key.expose(), generated.key.expose());
//! # Ok(())
//! # }
//! ```
//!
//! Every request is logged at debug level, target `atrest_kms`, message
//! `kms call` with its `op` (`RUST_LOG=atrest_kms=debug`): `cargo xtask
//! bench` counts them to check one KMS call per object.
//!
//! [`CachedKeys`] puts a cache in front of [`Kms`] for bulk transfers: one
//! data key serves many objects within explicit limits.
#![deny(missing_docs)]

mod cache;

pub use cache::{CacheLimits, CachedKeys, Generated, Unwrapped};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use atrest_crypto::DataKey;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::config::Region;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::operation::generate_data_key::GenerateDataKeyError;
use aws_sdk_kms::operation::generate_data_key_without_plaintext::GenerateDataKeyWithoutPlaintextError;
use aws_sdk_kms::operation::re_encrypt::ReEncryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;

/// A KMS operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// The KMS key does not exist (or the alias points nowhere).
    #[error("KMS key not found: {0}")]
    KeyNotFound(String),
    /// The KMS key is disabled or pending deletion.
    #[error("KMS key is disabled or not usable: {0}")]
    KeyDisabled(String),
    /// The caller may not use the key (or, for Decrypt, the key that wrapped
    /// the data key is not one the caller can reach at all).
    #[error("KMS refused to unwrap the data key: access denied (you may lack kms:Decrypt on the key, or it belongs to another account){}", detail(.0))]
    DecryptDenied(String),
    /// The caller may not use the key.
    #[error("KMS access denied{}", detail(.0))]
    AccessDenied(String),
    /// KMS cannot decrypt the wrapped key: it is damaged, belongs to another
    /// key, or was wrapped with a different encryption context.
    #[error("KMS could not unwrap the data key: the object is corrupted, was encrypted under another KMS key, or its encryption context does not match")]
    InvalidCiphertext,
    /// KMS refused the credentials themselves: unknown, badly signed or
    /// expired.
    #[error("KMS refused the AWS credentials{}", detail(.0))]
    CredentialsRejected(String),
    /// No usable AWS credentials: none found, or their provider failed
    /// (why, in one line).
    #[error("no usable AWS credentials: {0}")]
    NoCredentials(String),
    /// KMS returned a malformed answer (no key, or a generated key that is
    /// not the 32 bytes asked for).
    #[error("KMS returned a malformed data key")]
    MalformedResponse,
    /// The wrapped key unwrapped to a key that is not 32 bytes: a KMS data
    /// key made for another use (AES_128), not an atrest data key.
    #[error("the data key is {0} bytes, not 32: it is not an atrest data key (a KMS data key made for another cipher, such as AES_128)")]
    NotAtrestKey(usize),
    /// Any other failure.
    #[error("KMS {op} failed: {detail}")]
    Other {
        /// The KMS operation.
        op: &'static str,
        /// What went wrong.
        detail: String,
        /// Whether trying again later may succeed (throttling, a 5xx, a
        /// timeout; see [`atrest_sdk_error::is_transient`]).
        transient: bool,
    },
}

impl KmsError {
    /// Whether the same request may succeed later (throttling, a 5xx, a
    /// timeout, a broken connection); a missing or refused key, bad
    /// credentials or a ciphertext KMS cannot open are not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            KmsError::Other {
                transient: true,
                ..
            }
        )
    }

    fn from_sdk<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: Modeled + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(reason) = atrest_sdk_error::credentials_failure(&err) {
            return KmsError::NoCredentials(reason);
        }
        let message = err.message().unwrap_or_default().to_owned();
        // Modelled exceptions by type (their code is only filled in when
        // parsed off the wire); unmodelled ones, such as
        // AccessDeniedException, by code.
        let code = err
            .as_service_error()
            .and_then(Modeled::code)
            .or_else(|| err.code());
        match code {
            Some("NotFoundException") => KmsError::KeyNotFound(message),
            Some(
                "DisabledException"
                | "KMSInvalidStateException"
                | "KmsInvalidStateException"
                | "KeyUnavailableException",
            ) => KmsError::KeyDisabled(message),
            Some("AccessDeniedException") if op == "Decrypt" => KmsError::DecryptDenied(message),
            Some("AccessDeniedException") => KmsError::AccessDenied(message),
            Some(
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "IncompleteSignature"
                | "InvalidClientTokenId",
            ) => KmsError::CredentialsRejected(message),
            Some("InvalidCiphertextException" | "IncorrectKeyException") => {
                KmsError::InvalidCiphertext
            }
            _ => KmsError::Other {
                op,
                // Never the raw reply: see atrest_sdk_error::describe.
                detail: atrest_sdk_error::describe("KMS", &err),
                transient: atrest_sdk_error::is_transient(&err),
            },
        }
    }
}

/// The wire code of an operation's modelled exceptions.
trait Modeled {
    fn code(&self) -> Option<&'static str>;
}

macro_rules! modeled {
    ($error:ident { $($variant:ident),* $(,)? }) => {
        impl Modeled for $error {
            fn code(&self) -> Option<&'static str> {
                match self {
                    $($error::$variant(_) => Some(stringify!($variant)),)*
                    _ => None,
                }
            }
        }
    };
}

modeled!(GenerateDataKeyError {
    NotFoundException,
    DisabledException,
    KmsInvalidStateException,
    KeyUnavailableException,
});
modeled!(GenerateDataKeyWithoutPlaintextError {
    NotFoundException,
    DisabledException,
    KmsInvalidStateException,
    KeyUnavailableException,
});
modeled!(DecryptError {
    NotFoundException,
    DisabledException,
    KmsInvalidStateException,
    KeyUnavailableException,
    InvalidCiphertextException,
    IncorrectKeyException,
});
modeled!(ReEncryptError {
    NotFoundException,
    DisabledException,
    KmsInvalidStateException,
    KeyUnavailableException,
    InvalidCiphertextException,
    IncorrectKeyException,
});

/// `: message` for a non-empty message, nothing otherwise.
fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// A freshly generated data key: the plaintext for encrypting now, and the
/// wrapped form to store beside the data.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The plaintext key.
    pub key: DataKey,
    /// The KMS `CiphertextBlob`.
    pub wrapped: Vec<u8>,
    /// The ARN of the KMS key that wrapped it, as KMS answered (the request
    /// may have named an alias).
    pub key_id: Option<String>,
}

/// An unwrapped data key and the KMS key that had wrapped it.
#[derive(Debug)]
pub struct UnwrappedKey {
    /// The plaintext key.
    pub key: DataKey,
    /// The ARN of the KMS key that wrapped it, as KMS answered.
    pub key_id: Option<String>,
}

/// A data key re-wrapped by KMS `ReEncrypt`: the same plaintext key (never
/// seen by the caller) under another KMS key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReEncrypted {
    /// The new `CiphertextBlob`.
    pub wrapped: Vec<u8>,
    /// The ARN of the KMS key that now wraps it.
    pub key_id: String,
    /// The ARN of the KMS key that wrapped it before, if KMS said.
    pub source_key_id: Option<String>,
}

impl ReEncrypted {
    /// Whether the source and destination keys are the same KMS key: the
    /// data key was already wrapped under the target, so a re-wrap changes
    /// nothing of substance.
    pub fn is_same_key(&self) -> bool {
        self.source_key_id.as_deref() == Some(self.key_id.as_str())
    }
}

/// KMS operations atrest needs.
///
/// KMS keys are regional: a request naming a key or alias ARN of another
/// region than the client's goes to that region (a client made from this
/// one's configuration, kept for later requests), as the AWS CLI cannot
/// and the AWS Encryption SDK's keyrings do.
#[derive(Clone, Debug)]
pub struct Kms {
    client: Client,
    /// Clients of the other regions asked so far.
    regional: Arc<Mutex<HashMap<String, Client>>>,
}

// Each operation below is one SDK request written out in full (log line,
// builder, send, error mapping, answer checks): their shapes repeat, but a
// shared helper would have to be generic over five SDK builders and answers
// and would hide which fields each request sends.
impl Kms {
    /// Wraps a built client.
    pub fn new(client: Client) -> Self {
        Kms {
            client,
            regional: Default::default(),
        }
    }

    /// The client for a request on `key_id` (a cheap handle): of the
    /// region its ARN names, else this one.
    fn client_for(&self, key_id: Option<&str>) -> Client {
        let own = self.client.config().region().map(|r| r.as_ref());
        match key_id.and_then(arn_region) {
            Some(region) if own != Some(region) => {
                let mut regional = self.regional.lock().unwrap();
                let client = regional.entry(region.to_owned()).or_insert_with(|| {
                    // This client's configuration (credentials, endpoint,
                    // timeouts, retries) in the key's region.
                    let config = self.client.config().to_builder();
                    Client::from_conf(config.region(Region::new(region.to_owned())).build())
                });
                client.clone()
            }
            _ => self.client.clone(),
        }
    }

    /// Generates an AES-256 data key under `key_id` (key id, key ARN, alias
    /// name or alias ARN), bound to `context`.
    pub async fn generate_data_key(
        &self,
        key_id: &str,
        context: &[(String, String)],
    ) -> Result<GeneratedKey, KmsError> {
        tracing::debug!(target: "atrest_kms", op = "GenerateDataKey", "kms call");
        let out = self
            .client_for(Some(key_id))
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(|e| KmsError::from_sdk("GenerateDataKey", e))?;
        let key = take_key(out.plaintext).map_err(|_| KmsError::MalformedResponse)?;
        let wrapped = out
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or(KmsError::MalformedResponse)?;
        Ok(GeneratedKey {
            key,
            wrapped,
            key_id: out.key_id,
        })
    }

    /// Generates a data key and returns only its wrapped form: the plaintext
    /// never leaves KMS.
    pub async fn generate_wrapped_data_key(&self, key_id: &str) -> Result<Vec<u8>, KmsError> {
        tracing::debug!(target: "atrest_kms", op = "GenerateDataKeyWithoutPlaintext", "kms call");
        let out = self
            .client_for(Some(key_id))
            .generate_data_key_without_plaintext()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
            .map_err(|e| KmsError::from_sdk("GenerateDataKeyWithoutPlaintext", e))?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or(KmsError::MalformedResponse)
    }

    /// Unwraps a data key. `context` must equal the one it was wrapped with.
    pub async fn decrypt(
        &self,
        wrapped: &[u8],
        context: &[(String, String)],
    ) -> Result<UnwrappedKey, KmsError> {
        Self::decrypt_with(&self.client, wrapped, context).await
    }

    /// [`Kms::decrypt`] of a data key its object records as wrapped under
    /// `recorded` (a key ARN, as uploads record it): asked in that key's
    /// region, which a wrapped key does not name, and then, if that fails,
    /// in the client's (a record may be stale, or name a region that does
    /// not answer: another tool may have rewrapped the key). Both failing,
    /// the first error is returned.
    pub async fn decrypt_recorded(
        &self,
        wrapped: &[u8],
        context: &[(String, String)],
        recorded: Option<&str>,
    ) -> Result<UnwrappedKey, KmsError> {
        let there = self.client_for(recorded);
        let elsewhere = there.config().region() != self.client.config().region();
        match Self::decrypt_with(&there, wrapped, context).await {
            Err(e) if elsewhere => Self::decrypt_with(&self.client, wrapped, context)
                .await
                .map_err(|_| e),
            got => got,
        }
    }

    async fn decrypt_with(
        client: &Client,
        wrapped: &[u8],
        context: &[(String, String)],
    ) -> Result<UnwrappedKey, KmsError> {
        tracing::debug!(target: "atrest_kms", op = "Decrypt", "kms call");
        let out = client
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(|e| KmsError::from_sdk("Decrypt", e))?;
        let key = take_key(out.plaintext).map_err(|len| match len {
            Some(len) => KmsError::NotAtrestKey(len),
            None => KmsError::MalformedResponse,
        })?;
        Ok(UnwrappedKey {
            key,
            key_id: out.key_id,
        })
    }

    /// Re-wraps a wrapped data key under `to_key` (key id, key ARN, alias
    /// name or alias ARN) inside KMS, with `ReEncrypt`: the plaintext key
    /// never leaves KMS. `source_context` must be the context it was wrapped
    /// with; `destination_context` binds the new blob (pass the same one to
    /// keep the object's context). Sent to `to_key`'s region when it is an
    /// ARN (KMS re-wraps only within a region).
    pub async fn re_encrypt(
        &self,
        wrapped: &[u8],
        source_context: &[(String, String)],
        to_key: &str,
        destination_context: &[(String, String)],
    ) -> Result<ReEncrypted, KmsError> {
        tracing::debug!(target: "atrest_kms", op = "ReEncrypt", "kms call");
        let out = self
            .client_for(Some(to_key))
            .re_encrypt()
            .ciphertext_blob(Blob::new(wrapped))
            .set_source_encryption_context(context_map(source_context))
            .destination_key_id(to_key)
            .set_destination_encryption_context(context_map(destination_context))
            .send()
            .await
            .map_err(|e| KmsError::from_sdk("ReEncrypt", e))?;
        let wrapped = out
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or(KmsError::MalformedResponse)?;
        Ok(ReEncrypted {
            wrapped,
            key_id: out.key_id.ok_or(KmsError::MalformedResponse)?,
            source_key_id: out.source_key_id,
        })
    }
}

/// The region of a KMS key or alias ARN
/// (`arn:aws:kms:eu-west-1:111122223333:key/...`); `None` for key ids and
/// alias names, which mean the client's region.
pub fn arn_region(key_id: &str) -> Option<&str> {
    let mut parts = key_id.splitn(6, ':');
    let is_kms =
        parts.next() == Some("arn") && parts.next().is_some() && parts.next() == Some("kms");
    // A region name, nothing else: an object's metadata is untrusted, and
    // the region becomes part of a host name.
    let region = parts.next().filter(|r| {
        is_kms
            && !r.is_empty()
            && r.len() <= 32
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })?;
    // The account and the resource follow.
    parts.nth(1).filter(|resource| !resource.is_empty())?;
    Some(region)
}

fn context_map(context: &[(String, String)]) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| context.iter().cloned().collect())
}

/// Moves the SDK's plaintext into a [`DataKey`] and wipes the SDK's copy;
/// fails with the length of a key that is not 32 bytes (`None`: no key).
fn take_key(plaintext: Option<Blob>) -> Result<DataKey, Option<usize>> {
    use zeroize::Zeroize;
    let mut bytes = plaintext.map(Blob::into_inner).ok_or(None)?;
    let key = DataKey::from_slice(&bytes).map_err(|_| Some(bytes.len()));
    bytes.zeroize();
    key
}

#[cfg(test)]
mod tests {
    use super::arn_region;

    #[test]
    fn key_and_alias_arns_name_their_region_and_ids_and_names_none() {
        let key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(arn_region(key), Some("eu-west-1"));
        let alias = "arn:aws-cn:kms:cn-north-1:111122223333:alias/my-key";
        assert_eq!(arn_region(alias), Some("cn-north-1"));
        for none in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "alias/my-key",
            "arn:aws:s3:eu-west-1:111122223333:key/x",
            "arn:aws:kms::111122223333:key/x",
            "arn:aws:kms:eu-west-1",
            "arn:aws:kms:eu-west-1:111122223333:",
            "arn:aws:kms:evil.example/x:111122223333:key/x",
            "arn:aws:kms:EU-WEST-1:111122223333:key/x",
        ] {
            assert_eq!(arn_region(none), None, "{none}");
        }
    }
}
