//! Exit codes, and the mapping from errors to them.

use atrest_crypto::keyfile::{KeyFileError, UnwrapError};
use atrest_crypto::DecryptError;
use atrest_format::HeaderError;
use atrest_kms::KmsError;
use atrest_s3::S3Error;

/// Process exit codes (documented in `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Runtime = 1,
    Usage = 2,
    NotFoundOrDenied = 3,
    Untrusted = 4,
}

/// An error raised by the CLI itself, with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

/// The object's bytes are not an atrest object.
#[derive(Debug, thiserror::Error)]
pub enum NotAtrest {
    #[error("not an atrest object")]
    BadHeader(#[from] HeaderError),
    #[error("not an atrest object (only {0} bytes, too short for a header)")]
    TooShort(u64),
}

/// The transfer engine's error as one of ours: the causes that pick exit
/// codes (S3, KMS, I/O, decryption) stay reachable for [`exit_code`], and
/// a broken pipe stays one.
pub fn from_transfer(e: atrest_transfer::Error) -> anyhow::Error {
    use atrest_transfer::Error;
    if let Error::WrongKeyring { recorded, .. } = &e {
        let hint = match recorded {
            atrest_format::keyring::Keyring::KeyFile => "pass --key-file PATH",
            _ => "leave out --key-file",
        };
        return Failure::new(Exit::Usage, format!("{e}: {hint}")).into();
    }
    match e {
        Error::NotAtrest(header) => NotAtrest::BadHeader(header).into(),
        Error::TooShort(len) => NotAtrest::TooShort(len).into(),
        e @ (Error::ContextMismatch { .. }
        | Error::NoContext { .. }
        | Error::S3ec(_)
        | Error::S3ecContext(_)) => Failure::new(Exit::Untrusted, e.to_string()).into(),
        e @ (Error::RangeNeedsV2 { .. }
        | Error::RangeOutside { .. }
        | Error::Header(_)
        | Error::Unsupported(_)
        | Error::MetadataTooLarge { .. }
        | Error::EnvelopeTooLarge { .. }
        | Error::ReservedMetadata { .. }) => Failure::new(Exit::Usage, e.to_string()).into(),
        Error::Decrypt(e) => e.into(),
        Error::S3(e) => e.into(),
        Error::Io(e) => e.into(),
        // Keep the key source's own error, which picks the exit code.
        // The KMS key the object's metadata names, when it would not unwrap.
        Error::Key(e) => {
            let recorded = e.recorded_key().map(atrest_transfer::recorded_key_note);
            let err = match e.into_inner().downcast::<KmsError>() {
                Ok(kms) => (*kms).into(),
                Err(other) => match other.downcast::<UnwrapError>() {
                    Ok(wrong_key_file) => (*wrong_key_file).into(),
                    Err(other) => anyhow::anyhow!("{other}"),
                },
            };
            match recorded {
                Some(note) => err.context(format!("cannot unwrap the data key ({note})")),
                None => err,
            }
        }
        e => e.into(),
    }
}

/// A manifest that cannot be read as one of ours: S3 and I/O failures keep
/// their exit codes; a malformed manifest is a usage error.
pub fn from_manifest(e: atrest_transfer::manifest::ManifestError) -> anyhow::Error {
    use atrest_transfer::manifest::ManifestError;
    match e {
        ManifestError::S3(e) => e.into(),
        ManifestError::Io { path, source } if source.kind() == std::io::ErrorKind::InvalidInput => {
            Failure::new(
                Exit::Usage,
                format!("cannot read the manifest {path}: {source}"),
            )
            .into()
        }
        ManifestError::Io { path, source } => {
            anyhow::Error::new(source).context(format!("cannot read the manifest {path}"))
        }
        e => Failure::new(Exit::Usage, e.to_string()).into(),
    }
}

/// Whether `err` is S3's refusal of an archived object (see
/// `--ignore-glacier-warnings`).
pub fn is_archived(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|c| matches!(c.downcast_ref::<S3Error>(), Some(S3Error::Archived { .. })))
}

/// Whether the error is S3's "no such key" of `uri`: it does not exist.
pub fn is_missing(err: &anyhow::Error, uri: &atrest_s3::S3Uri) -> bool {
    let uri = uri.to_string();
    err.chain().any(|c| {
        matches!(c.downcast_ref::<S3Error>(), Some(S3Error::NoSuchKey { uri: gone }) if *gone == uri)
    })
}

/// Picks the exit code for an error by the most specific cause it carries.
pub fn exit_code(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.exit;
        }
        if let Some(e) = cause.downcast_ref::<atrest_fs::Error>() {
            use atrest_fs::Error as Fs;
            match e {
                e if e.is_usage() => return Exit::Usage,
                Fs::DanglingLink(_) | Fs::NoDirectory { .. } => return Exit::NotFoundOrDenied,
                Fs::UnsafeKey(_) => return Exit::Untrusted,
                // The I/O error beneath decides.
                _ => {}
            }
        }
        if cause.is::<DecryptError>() || cause.is::<NotAtrest>() || cause.is::<UnwrapError>() {
            return Exit::Untrusted;
        }
        if let Some(e) = cause.downcast_ref::<KeyFileError>() {
            // I/O failures fall through to their io::Error (not found: 3).
            if !matches!(e, KeyFileError::Io(_)) {
                return Exit::Usage;
            }
        }
        if let Some(e) = cause.downcast_ref::<KmsError>() {
            return match e {
                KmsError::KeyNotFound(_)
                | KmsError::KeyDisabled(_)
                | KmsError::AccessDenied(_)
                | KmsError::DecryptDenied(_)
                | KmsError::CredentialsRejected(_)
                | KmsError::NoCredentials(_) => Exit::NotFoundOrDenied,
                KmsError::InvalidCiphertext | KmsError::NotAtrestKey(_) => Exit::Untrusted,
                _ => Exit::Runtime,
            };
        }
        if let Some(e) = cause.downcast_ref::<S3Error>() {
            return match e {
                S3Error::NoSuchBucket { .. }
                | S3Error::NoSuchKey { .. }
                | S3Error::AccessDenied { .. }
                | S3Error::NoCredentials(_) => Exit::NotFoundOrDenied,
                _ => Exit::Runtime,
            };
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) {
                return Exit::NotFoundOrDenied;
            }
        }
    }
    Exit::Runtime
}

/// How to fix what the error says, if atrest knows.
const CONFIGURE_CREDENTIALS: &str = "configure credentials with `aws configure`, export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile NAME";

/// The one line printed for `err`: its causes joined with ": ", each cause
/// left out when the text so far already says it (an error whose message
/// quotes its source would otherwise print it twice), and a hint on how to
/// fix it where there is one.
pub fn message(err: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut hint = None;
    for cause in err.chain() {
        if is_credentials_failure(cause) {
            hint = Some(CONFIGURE_CREDENTIALS);
        }
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    if let Some(hint) = hint {
        line.push_str("; ");
        line.push_str(hint);
    }
    line
}

/// An error and its causes on one line, joined as [`message`] joins them
/// (for per-object results, which are not `anyhow` errors).
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause = Some(err);
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// No credentials, or credentials the service refused as such (not a
/// permission the caller lacks).
fn is_credentials_failure(cause: &(dyn std::error::Error + 'static)) -> bool {
    match (
        cause.downcast_ref::<KmsError>(),
        cause.downcast_ref::<S3Error>(),
    ) {
        (Some(KmsError::NoCredentials(_) | KmsError::CredentialsRejected(_)), _) => true,
        (_, Some(S3Error::NoCredentials(_))) => true,
        (_, Some(S3Error::AccessDenied { code, .. })) => matches!(
            code.as_str(),
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken"
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(21);
        let err = anyhow::Error::new(Quoting(io)).context("cannot write out");
        assert_eq!(
            message(&err),
            "cannot write out: Is a directory (os error 21)"
        );
    }

    /// Displays its source, and also returns it from `source()`.
    #[derive(Debug)]
    struct Quoting(std::io::Error);

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn credentials_failures_say_how_to_configure() {
        let err = anyhow::Error::new(S3Error::NoCredentials("none found".into()));
        assert!(
            message(&err).ends_with(CONFIGURE_CREDENTIALS),
            "{}",
            message(&err)
        );
        assert_eq!(exit_code(&err), Exit::NotFoundOrDenied);
    }
}
