//! Local files for atrest: where plaintext lands on disk, and how a
//! directory tree maps to S3 keys.
//!
//! - [`output`]: a destination path opened before anything is downloaded
//!   ([`Output::create`]) and written either in order or at offsets
//!   ([`Output::positional`]); a regular file is written to a private
//!   (mode 0600) temporary file beside it and renamed into place by
//!   [`Output::commit`], so a failed or interrupted transfer leaves the old
//!   file as it was and no partial plaintext under the destination's name.
//!   Standard output (`-`), devices, FIFOs and sockets are written in
//!   place. [`Output`] is an [`atrest_transfer::OrderedSink`], so it takes a
//!   download as it is.
//! - [`tree`]: the regular files under a directory with the S3 key each
//!   becomes ([`tree::walk`]), filtered as the AWS CLI's `--include` and
//!   `--exclude` filter ([`tree::Filter`]); and the other way, the path a
//!   key below a prefix becomes, refusing keys that would leave the
//!   directory ([`tree::join_key`]). Whatever cannot be transferred as it
//!   is (a FIFO, a name that is not UTF-8, a link that loops) is named
//!   with its reason, never opened.
//! - [`destination`]: where one file or object lands when the destination
//!   is a prefix or a directory, as `aws s3 cp` decides.
//! - [`moved`]: a moved file removed only if it is still the one read.
//! - [`read_small`]: a small file read whole, within a bound, so that a
//!   device given by mistake fails instead of filling memory.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use atrest_fs::{tree, Output};
//!
//! let mut out = Output::create("report.csv".as_ref()).await?;
//! out.write(bytes::Bytes::from_static(b"id,total\n")).await?;
//! out.commit().await?; // report.csv appears only now, whole
//!
//! let filter = tree::Filter::new(&[tree::Rule::Exclude("*.tmp".into())])?;
//! for file in tree::walk("data".as_ref(), &filter)?.files {
//!     match file.source {
//!         Ok(source) => println!("{} -> s3://bucket/data/{}", file.name, source.rel),
//!         Err(why) => eprintln!("skipped {}: {why}", file.name),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod destination;
mod error;
pub mod moved;
pub mod output;
mod small;
pub mod tree;

pub use error::Error;
pub use output::{is_std_stream, Output};
pub use small::read_small;
