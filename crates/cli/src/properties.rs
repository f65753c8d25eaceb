//! The object properties of an upload from the command's flags.

use std::path::Path;

use atrest_s3::Properties;

use crate::cli::PropertiesArgs;
use crate::failure::{Exit, Failure};

fn usage(message: String) -> anyhow::Error {
    Failure::new(Exit::Usage, message).into()
}

/// S3's limits on object tags, as it documents them: at most 10, each key
/// once, up to 128 characters and none starting `aws:`, values up to 256.
/// Checked before anything is sent: S3 would refuse each upload after its
/// KMS call.
fn check_tags(tags: &[(String, String)]) -> anyhow::Result<()> {
    let bad = |why: String| Err(usage(format!("--tagging: {why}")));
    if tags.len() > 10 {
        return bad(format!("{} tags; S3 allows at most 10", tags.len()));
    }
    let mut keys = std::collections::HashSet::new();
    for (key, value) in tags {
        if !keys.insert(key) {
            return bad(format!("the key `{key}` is given twice"));
        }
        if key.chars().count() > 128 || value.chars().count() > 256 {
            return bad(format!("`{key}`: keys may have 128 characters, values 256"));
        }
        if key.starts_with("aws:") {
            return bad(format!("`{key}`: keys starting aws: are AWS's own"));
        }
    }
    Ok(())
}

impl PropertiesArgs {
    /// Whether any property was asked for.
    pub fn any(&self) -> bool {
        let p = self;
        p.content_type.is_some()
            || p.content_disposition.is_some()
            || p.content_encoding.is_some()
            || p.content_language.is_some()
            || p.cache_control.is_some()
            || p.expires.is_some()
            || p.no_guess_mime_type
            || !p.metadata.is_empty()
            || p.storage_class.is_some()
            || p.tagging.is_some()
            || p.sse.is_some()
            || p.sse_kms_key_id.is_some()
            || p.acl.is_some()
    }

    /// Checks what holds for every object: SSE flags that go together, and
    /// user metadata within S3's limit beside atrest's own entries. Run
    /// before anything is sent.
    pub fn check(&self) -> anyhow::Result<()> {
        use aws_sdk_s3::types::ServerSideEncryption;
        if self.sse_kms_key_id.is_some() && self.sse != Some(ServerSideEncryption::AwsKms) {
            return Err(usage("--sse-kms-key-id needs --sse aws:kms".into()));
        }
        // Each travels as an HTTP header: caught here, a bad one is one
        // usage error, not a failed request per file after a KMS call.
        let headers = [
            ("--content-type", &self.content_type),
            ("--content-disposition", &self.content_disposition),
            ("--content-encoding", &self.content_encoding),
            ("--content-language", &self.content_language),
            ("--cache-control", &self.cache_control),
        ];
        let values = headers
            .into_iter()
            .filter_map(|(flag, value)| Some((flag, value.as_deref()?)));
        if let Some(tags) = &self.tagging {
            check_tags(&tags.0)?;
        }
        // S3 keeps metadata names in lower case: `Team` and `team` would
        // be one entry holding both values.
        let mut names = std::collections::HashSet::new();
        let given = self.metadata.iter().flat_map(|p| p.0.iter());
        if let Some((name, _)) = given
            .clone()
            .find(|(k, _)| !names.insert(k.to_ascii_lowercase()))
        {
            return Err(usage(format!(
                "--metadata gives `{name}` twice (names are case-insensitive)"
            )));
        }
        let user = self.user_metadata();
        // S3 stores header bytes as they come, and reads them back as
        // Latin-1: UTF-8 would come back garbled. The AWS CLI refuses them.
        if let Some(value) = user.values().find(|v| !v.is_ascii()) {
            return Err(usage(format!(
                "--metadata: {value:?}: S3 metadata can hold ASCII characters only"
            )));
        }
        for (flag, value) in values.chain(user.values().map(|v| ("--metadata", v.as_str()))) {
            if http::HeaderValue::from_bytes(value.as_bytes()).is_err() {
                return Err(usage(format!(
                    "{flag}: {value:?} cannot be sent as an HTTP header (no line breaks or control characters)"
                )));
            }
        }
        if let Some(key) = user
            .keys()
            .find(|k| http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()).is_err())
        {
            return Err(usage(format!(
                "--metadata: {key:?} cannot be a metadata key (letters, digits and !#$%&'*+-.^_`|~ only)"
            )));
        }
        atrest_transfer::metadata::check_user_metadata(&user)
            .map_err(|e| usage(format!("--metadata: {e}")))
    }

    fn user_metadata(&self) -> std::collections::HashMap<String, String> {
        self.metadata
            .iter()
            .flat_map(|p| p.0.iter().cloned())
            .collect()
    }

    /// Whether a copy between s3:// locations replaces the source's
    /// metadata and headers: `--metadata-directive REPLACE`, or
    /// `--metadata` without a directive (the AWS CLI's rule).
    pub fn replaces(&self) -> bool {
        match self.metadata_directive.as_deref() {
            Some(directive) => directive == "REPLACE",
            None => !self.metadata.is_empty(),
        }
    }

    /// The standard headers and user metadata a replacing copy gets: as
    /// given, nothing guessed.
    pub fn for_copy(&self) -> Properties {
        let mut p = Properties::default();
        p.metadata = self.user_metadata();
        p.content_type = self.content_type.clone();
        p.content_disposition = self.content_disposition.clone();
        p.content_encoding = self.content_encoding.clone();
        p.content_language = self.content_language.clone();
        p.cache_control = self.cache_control.clone();
        p.expires = self.expires;
        p
    }

    /// The properties of the object made from `file`: as given, with the
    /// Content-Type guessed from the file's extension when absent (as the
    /// AWS CLI guesses it; none for stdin or an unknown extension).
    pub fn for_file(&self, file: &Path) -> Properties {
        let mut p = Properties::default();
        p.metadata = self.user_metadata();
        p.content_type = self.content_type.clone().or_else(|| {
            if self.no_guess_mime_type || atrest_fs::output::is_std_stream(file) {
                return None;
            }
            mime_guess::from_path(file).first_raw().map(str::to_owned)
        });
        p.content_disposition = self.content_disposition.clone();
        p.content_encoding = self.content_encoding.clone();
        p.content_language = self.content_language.clone();
        p.cache_control = self.cache_control.clone();
        p.expires = self.expires;
        p.storage_class = self.storage_class.clone();
        p.tags = self.tagging.clone().map(|t| t.0).unwrap_or_default();
        p.server_side_encryption = self.sse.clone();
        p.sse_kms_key_id = self.sse_kms_key_id.clone();
        p.acl = self.acl.clone();
        p
    }
}
