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
//! assert_eq!(again.expose(), generated.key.expose());
//! # Ok(())
//! # }
//! ```
//!
//! Every request is logged at debug level, target `atrest_kms`, message
//! `kms call` with its `op` (`RUST_LOG=atrest_kms=debug`): `cargo xtask
//! bench` counts them to check one KMS call per object.
#![deny(missing_docs)]

use std::collections::HashMap;

use atrest_crypto::DataKey;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::operation::generate_data_key::GenerateDataKeyError;
use aws_sdk_kms::operation::generate_data_key_without_plaintext::GenerateDataKeyWithoutPlaintextError;
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
    /// No AWS credentials could be found.
    #[error("no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`)")]
    NoCredentials,
    /// KMS returned a data key that is not 32 bytes.
    #[error("KMS returned a malformed data key")]
    MalformedResponse,
    /// Any other failure.
    #[error("KMS {op} failed: {detail}")]
    Other {
        /// The KMS operation.
        op: &'static str,
        /// What went wrong.
        detail: String,
    },
}

impl KmsError {
    fn from_sdk<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: Modeled + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
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
            Some(
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException",
            ) => KmsError::AccessDenied(message),
            Some("InvalidCiphertextException" | "IncorrectKeyException") => {
                KmsError::InvalidCiphertext
            }
            _ => {
                let detail = safe_detail(&err);
                if detail.contains("no credentials")
                    || detail.contains("failed to load credentials")
                    || detail.contains("credentials provider was not enabled")
                {
                    KmsError::NoCredentials
                } else {
                    KmsError::Other { op, detail }
                }
            }
        }
    }
}

/// What went wrong, without the raw HTTP response.
///
/// The SDK's `DisplayErrorContext` shows the whole response, body included,
/// and the body of a Decrypt or GenerateDataKey answer holds the plaintext
/// data key: a reply that fails to parse would print the key. So a reply
/// is described by its status and AWS error code and message only (error
/// replies hold no key); failures before any reply (connection, timeout,
/// credentials) keep the SDK's full description, which has no body.
fn safe_detail<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match err {
        SdkError::ServiceError(_) if err.code().is_some() => {
            let code = err.code().unwrap_or_default();
            match err.message() {
                Some(message) if !message.is_empty() => format!("{code}: {message}"),
                _ => code.to_owned(),
            }
        }
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => match status {
            Some(status) => format!("KMS sent a reply that could not be read (HTTP {status})"),
            None => "KMS sent a reply that could not be read".to_owned(),
        },
        SdkError::TimeoutError(_) => "the request to KMS timed out".to_owned(),
        _ => DisplayErrorContext(err).to_string(),
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
}

/// KMS operations atrest needs.
#[derive(Clone, Debug)]
pub struct Kms {
    client: Client,
}

impl Kms {
    /// Wraps a built client.
    pub fn new(client: Client) -> Self {
        Kms { client }
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
            .client
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(|e| KmsError::from_sdk("GenerateDataKey", e))?;
        let key = take_key(out.plaintext)?;
        let wrapped = out
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or(KmsError::MalformedResponse)?;
        Ok(GeneratedKey { key, wrapped })
    }

    /// Generates a data key and returns only its wrapped form: the plaintext
    /// never leaves KMS.
    pub async fn generate_wrapped_data_key(&self, key_id: &str) -> Result<Vec<u8>, KmsError> {
        tracing::debug!(target: "atrest_kms", op = "GenerateDataKeyWithoutPlaintext", "kms call");
        let out = self
            .client
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
    ) -> Result<DataKey, KmsError> {
        tracing::debug!(target: "atrest_kms", op = "Decrypt", "kms call");
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(|e| KmsError::from_sdk("Decrypt", e))?;
        take_key(out.plaintext)
    }
}

fn context_map(context: &[(String, String)]) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| context.iter().cloned().collect())
}

/// Moves the SDK's plaintext into a [`DataKey`] and wipes the SDK's copy.
fn take_key(plaintext: Option<Blob>) -> Result<DataKey, KmsError> {
    use zeroize::Zeroize;
    let mut bytes = plaintext
        .map(Blob::into_inner)
        .ok_or(KmsError::MalformedResponse)?;
    let key = DataKey::from_slice(&bytes).map_err(|_| KmsError::MalformedResponse);
    bytes.zeroize();
    key
}
