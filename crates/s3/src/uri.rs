use std::fmt;

/// An `s3://bucket/key` location.
///
/// Follows the AWS CLI: everything after the first `/` following the bucket is
/// the key, verbatim (no percent-decoding). So `s3://b//dir/f` names the key
/// `/dir/f`, which is where the original Node tool stored `s3://b/dir/f`.
///
/// ```
/// use atrest_s3::S3Uri;
///
/// let uri = S3Uri::parse("s3://my-bucket/reports/2026 q3.pdf").unwrap();
/// assert_eq!((uri.bucket(), uri.key()), ("my-bucket", "reports/2026 q3.pdf"));
/// assert_eq!(S3Uri::parse("s3://my-bucket//legacy").unwrap().key(), "/legacy");
/// assert!(S3Uri::parse("s3://my-bucket").is_err());
/// ```
///
/// The bucket may be an access point's ARN, as in the AWS CLI (the SDK
/// sends requests to the access point):
///
/// ```
/// use atrest_s3::S3Uri;
///
/// let uri = S3Uri::parse("s3://arn:aws:s3:us-west-2:123456789012:accesspoint/ap/dir/f").unwrap();
/// assert_eq!(uri.bucket(), "arn:aws:s3:us-west-2:123456789012:accesspoint/ap");
/// assert_eq!(uri.key(), "dir/f");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Uri {
    bucket: String,
    key: String,
}

/// Why a string is not a usable S3 URI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum S3UriError {
    /// It does not start with `s3://`.
    #[error("`{0}` is not an S3 URI: expected s3://BUCKET/KEY")]
    NotS3(String),
    /// The bucket part is empty.
    #[error("`{0}` names no bucket: expected s3://BUCKET/KEY")]
    NoBucket(String),
    /// There is no key after the bucket.
    #[error("`{0}` names no object key: expected s3://BUCKET/KEY")]
    NoKey(String),
    /// The bucket name has characters S3 never allows in one.
    #[error("`{0}` has an invalid bucket name")]
    BadBucket(String),
}

impl S3Uri {
    /// Parses `s3://bucket/key`. The key must be non-empty.
    pub fn parse(s: &str) -> Result<Self, S3UriError> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| S3UriError::NotS3(s.to_owned()))?;
        let (bucket, key) = match rest.starts_with("arn:") {
            true => split_access_point(rest).ok_or_else(|| S3UriError::BadBucket(s.to_owned()))?,
            false => rest.split_once('/').unwrap_or((rest, "")),
        };
        if bucket.is_empty() {
            return Err(S3UriError::NoBucket(s.to_owned()));
        }
        // S3 bucket names are lower-case letters, digits, dots and hyphens
        // (older buckets may have upper case and underscores).
        let name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if !bucket.starts_with("arn:") && !bucket.chars().all(name) {
            return Err(S3UriError::BadBucket(s.to_owned()));
        }
        if key.is_empty() {
            return Err(S3UriError::NoKey(s.to_owned()));
        }
        Ok(S3Uri {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Parses `s3://bucket/prefix`, where the prefix may be empty:
    /// `s3://bucket` and `s3://bucket/` name the whole bucket (for
    /// listings and transfers of many objects).
    ///
    /// ```
    /// use atrest_s3::S3Uri;
    ///
    /// assert_eq!(S3Uri::parse_prefix("s3://my-bucket").unwrap().key(), "");
    /// assert_eq!(S3Uri::parse_prefix("s3://my-bucket/").unwrap().key(), "");
    /// assert_eq!(S3Uri::parse_prefix("s3://my-bucket/dir/").unwrap().key(), "dir/");
    /// ```
    pub fn parse_prefix(s: &str) -> Result<Self, S3UriError> {
        match Self::parse(s) {
            Err(S3UriError::NoKey(_)) => {
                let rest = &s["s3://".len()..];
                let rest = rest.strip_suffix('/').unwrap_or(rest);
                let bucket = split_access_point(rest).map_or(rest, |(arn, _)| arn);
                Ok(S3Uri {
                    bucket: bucket.to_owned(),
                    key: String::new(),
                })
            }
            other => other,
        }
    }

    /// The bucket name (or an access point's ARN).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether the bucket is an access point's ARN.
    pub fn is_access_point(&self) -> bool {
        self.bucket.starts_with("arn:")
    }

    /// The object key, exactly as stored in S3.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The location of `key` in the same bucket.
    pub fn with_key(&self, key: impl Into<String>) -> S3Uri {
        S3Uri {
            bucket: self.bucket.clone(),
            key: key.into(),
        }
    }
}

/// An access point ARN and the key after it:
/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:accesspoint/NAME[/KEY]`, or for
/// S3 on Outposts `...:outpost/ID/accesspoint/NAME[/KEY]`.
fn split_access_point(rest: &str) -> Option<(&str, &str)> {
    let fields: Vec<&str> = rest.splitn(6, ':').collect();
    let [_arn, partition, service, _region, account, resource] = fields[..] else {
        return None;
    };
    let services = ["s3", "s3-outposts", "s3-object-lambda"];
    if partition.is_empty() || !services.contains(&service) || account.is_empty() {
        return None;
    }
    // The resource's first segments name the access point; the key follows.
    let names = match resource.split('/').next() {
        Some("accesspoint") => 2,
        Some("outpost") => 4,
        _ => return None,
    };
    let named: Vec<&str> = resource.splitn(names + 1, '/').take(names).collect();
    let valid = named.len() == names
        && named.iter().all(|n| !n.is_empty())
        && (names == 2 || named[2] == "accesspoint");
    if !valid {
        return None;
    }
    let arn_end = rest.len() - resource.len() + named.join("/").len();
    let (arn, key) = rest.split_at(arn_end);
    Some((arn, key.strip_prefix('/').unwrap_or(key)))
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_verbatim_after_the_bucket() {
        let u = S3Uri::parse("s3://bucket/dir/a b%20c").unwrap();
        assert_eq!((u.bucket(), u.key()), ("bucket", "dir/a b%20c"));
        let legacy = S3Uri::parse("s3://bucket//dir/file").unwrap();
        assert_eq!(legacy.key(), "/dir/file");
        assert_eq!(legacy.to_string(), "s3://bucket//dir/file");
    }

    #[test]
    fn prefixes_may_be_a_whole_bucket() {
        for s in ["s3://bucket", "s3://bucket/"] {
            let u = S3Uri::parse_prefix(s).unwrap();
            assert_eq!((u.bucket(), u.key()), ("bucket", ""), "{s}");
            assert_eq!(u.to_string(), "s3://bucket/");
        }
        assert_eq!(S3Uri::parse_prefix("s3://b/p").unwrap().key(), "p");
        assert!(S3Uri::parse_prefix("s3://").is_err());
        assert!(S3Uri::parse_prefix("s3://b?x").is_err());
    }

    #[test]
    fn access_point_arns_are_buckets() {
        let ap = "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap";
        let u = S3Uri::parse(&format!("s3://{ap}/dir/k")).unwrap();
        assert_eq!(
            (u.bucket(), u.key(), u.is_access_point()),
            (ap, "dir/k", true)
        );
        assert_eq!(u.to_string(), format!("s3://{ap}/dir/k"));
        let outpost = "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01/accesspoint/ap";
        let u = S3Uri::parse(&format!("s3://{outpost}/k")).unwrap();
        assert_eq!((u.bucket(), u.key()), (outpost, "k"));
        for whole in [format!("s3://{ap}"), format!("s3://{ap}/")] {
            let u = S3Uri::parse_prefix(&whole).unwrap();
            assert_eq!((u.bucket(), u.key()), (ap, ""), "{whole}");
            assert!(
                matches!(S3Uri::parse(&whole), Err(S3UriError::NoKey(_))),
                "{whole}"
            );
        }
        for bad in [
            "s3://arn:aws:s3:us-west-2:123456789012:bucket/b/k",
            "s3://arn:aws:sqs:us-west-2:123456789012:accesspoint/ap/k",
            "s3://arn:aws:s3:us-west-2::accesspoint/ap/k",
            "s3://arn:aws:s3:us-west-2:123456789012:accesspoint//k",
            "s3://arn:aws:s3-outposts:us-west-2:1:outpost/op/bucket/b/k",
            "s3://arn:aws:s3",
        ] {
            assert!(
                matches!(S3Uri::parse(bad), Err(S3UriError::BadBucket(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_uris_say_why() {
        use S3UriError::*;
        let cases = [
            ("http://bucket/key", NotS3("http://bucket/key".into())),
            ("bucket/key", NotS3("bucket/key".into())),
            ("s3://", NoBucket("s3://".into())),
            ("s3:///key", NoBucket("s3:///key".into())),
            ("s3://bucket", NoKey("s3://bucket".into())),
            ("s3://bucket/", NoKey("s3://bucket/".into())),
            ("s3://b?x/key", BadBucket("s3://b?x/key".into())),
        ];
        for (input, want) in cases {
            assert_eq!(S3Uri::parse(input), Err(want), "{input}");
        }
    }
}
