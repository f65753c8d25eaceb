//! The atrest transfer engine: parallel ranged downloads and encrypted
//! multipart uploads of atrest objects, for the `atrest` command and for
//! every program that embeds atrest.
//!
//! A [`Transfer`] is built from an S3 client and a [`KeySource`] (KMS
//! through [`atrest_kms::CachedKeys`], or a type of your own). From it:
//!
//! - [`Transfer::upload`] encrypts a reader into an object: the plaintext
//!   is read into part-sized batches, sealed in place on the blocking pool
//!   and sent as multipart parts while the next batch is read. It runs as a
//!   task: its [`UploadHandle`] is awaited or aborted (which aborts the
//!   multipart upload, so no parts remain).
//! - [`Transfer::download`] decrypts an object, or a plaintext range of it,
//!   into a [`Sink`]: a file, written at offsets by parallel ranged GETs,
//!   or any ordered writer (an [`AsyncWrite`](tokio::io::AsyncWrite)
//!   through [`into_writer`](Download::into_writer)). Frames are opened
//!   straight from the network chunks that carry them; a stream whose body
//!   breaks resumes where it stopped; every GET is pinned to the ETag (and
//!   version) of the first, so a download never mixes two versions of an
//!   object.
//!
//! Whole-object operations built on the same primitives:
//!
//! - [`rewrap`]: move objects to another KMS key without re-uploading them
//!   (only the header changes; the body is copied inside S3).
//! - [`copy`]: copy an object to another S3 location inside S3, as it is.
//! - [`inspect`]: what one object is, from its first bytes alone.
//! - [`list`]: what each object under a prefix is, from its header alone.
//! - [`verify`]: download, unwrap and authenticate objects, writing nothing.
//! - [`upgrade`]: re-encrypt v1 objects as v2 in place, verified before
//!   they replace the original.
//! - [`manifest`]: the objects of a bulk run, listed or from an S3 Batch
//!   Operations or S3 Inventory manifest, split into shards for N workers.
//! - [`sync`]: what a sync transfers, decided as `aws s3 sync` decides, from
//!   plaintext sizes learned from listings.
//! - [`moves`] and [`remove`]: a move's source removed only as it was read;
//!   deletions that keep an S3 Encryption Client object with its
//!   instruction file.
//!
//! And beside them: [`s3ec`] (the AWS S3 Encryption Client's objects, read
//! and written), [`local`] (local streams encrypted and decrypted with the
//! same key sources, no S3), [`metadata`] (the user metadata atrest
//! records) and [`stop`] (asking an operation to stop cleanly).
//!
//! Options default to measured values (see the constants, and
//! `docs/BENCHMARKS.md`). Progress goes to an [`Observer`]; failures are an
//! [`Error`].
//!
//! ```no_run
//! # async fn example() -> Result<(), atrest_transfer::Error> {
//! use std::sync::Arc;
//! use atrest_transfer::{ByteRange, DataKeyFrom, S3Uri, Transfer};
//!
//! let config = aws_config::load_from_env().await;
//! let kms = atrest_kms::Kms::new(aws_sdk_kms::Client::new(&config));
//! let keys = Arc::new(atrest_kms::CachedKeys::uncached(kms));
//! let transfer = Transfer::new(aws_sdk_s3::Client::new(&config), keys);
//!
//! let uri = S3Uri::parse("s3://my-bucket/report.csv").unwrap();
//! let input = tokio::fs::File::open("report.csv").await?;
//! let context = [("department".to_owned(), "finance".to_owned())];
//! let key = DataKeyFrom::Generate("alias/my-key".to_owned());
//! transfer.upload(&uri, key).context(&context).start(input).join().await?;
//!
//! let mut head = Vec::new();
//! transfer
//!     .download(&uri)
//!     .range(ByteRange::new(0, 99))
//!     .expect_context(&context)
//!     .into_writer(&mut head)
//!     .await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod buffers;
pub mod copy;
mod download;
mod error;
pub mod inspect;
mod keys;
pub mod list;
pub mod local;
pub mod manifest;
pub mod metadata;
pub mod moves;
mod observer;
mod range;
pub mod remove;
pub mod rewrap;
pub mod s3ec;
mod sink;
pub mod stop;
pub mod sync;
pub mod upgrade;
mod upload;
pub mod verify;

use std::sync::Arc;

use atrest_format::{v2, MAX_WRAPPED_KEY_LEN, PREFIX_LEN};
pub use atrest_s3::{Abandoned, ByteRange, ObjectVersion, Properties, S3Uri};
pub use download::{
    check_expected_context, Download, Downloaded, Kind, DEFAULT_PART_SIZE, FILE_STREAMS,
    FIRST_FETCH, MAX_STREAMS, ORDERED_STREAMS, ORDERED_WINDOW,
};
pub use error::{Error, Retry};
pub use keys::{recorded_key_note, KeyError, KeySource, NewDataKey, UnwrappedDataKey};
pub use observer::{NoProgress, Observer, Warning};
pub use range::PlainRange;
pub use sink::{write_all_at, OrderedSink, Sink, Writer};
pub use stop::{Stop, StopHandle};
pub use upload::{DataKeyFrom, Format, Input, Upload, UploadHandle, Uploaded, DEFAULT_CONCURRENCY};

/// Bytes that always hold a whole header: the first ranged GET of an object.
const HEADER_FETCH: u64 =
    (PREFIX_LEN + MAX_WRAPPED_KEY_LEN + v2::TAIL_FIXED_LEN + v2::MAX_CONTEXT_LEN) as u64;

/// The user-metadata entry (`x-amz-meta-…`) where atrest records the ARN of
/// the KMS key that wrapped an object's data key. Informational only: no
/// reader trusts it, KMS alone decides which key unwraps; it tells a person
/// (and error messages) which key, and so which region, an object needs.
pub const KMS_KEY_METADATA: &str = "atrest-kms-key-arn";

/// Transfers of atrest objects between S3 and local data. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Transfer {
    s3: aws_sdk_s3::Client,
    keys: Arc<dyn KeySource>,
}

impl Transfer {
    /// Transfers through `s3`, with data keys from `keys`.
    pub fn new(s3: aws_sdk_s3::Client, keys: Arc<dyn KeySource>) -> Self {
        Transfer { s3, keys }
    }

    /// The S3 client.
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// The key source.
    pub fn keys(&self) -> &Arc<dyn KeySource> {
        &self.keys
    }

    /// An upload of a reader to `uri`, encrypted under `key`.
    pub fn upload(&self, uri: &S3Uri, key: DataKeyFrom) -> Upload<'_> {
        Upload::new(self, uri.clone(), key)
    }

    /// A download of the object at `uri`, decrypted.
    pub fn download(&self, uri: &S3Uri) -> Download<'_> {
        Download::new(self, uri.clone())
    }
}

/// Untrusted text (object keys, context values) with control characters
/// escaped, so that it cannot drive a terminal, and with the invisible
/// characters that reorder or hide what a terminal shows (bidirectional
/// overrides, zero-width marks, line separators) escaped too, so that a
/// key cannot pose as another (`invoice\u{202e}fdp.exe`).
pub fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() || is_invisible_format(c) {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Unicode format characters (and the two separators) that change how the
/// text around them is shown without showing themselves.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}
