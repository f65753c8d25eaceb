//! Integration tests: the real `atrest` binary against a local S3/KMS
//! endpoint (moto_server, started by `cargo xtask test`).
//!
//! The endpoint comes from `ATREST_TEST_ENDPOINT`. Without it (a plain
//! `cargo test`) these tests print a notice and pass vacuously; under xtask
//! it is always set, so an unusable endpoint fails them.

mod archived;
mod bulk;
mod completions;
mod cp;
mod credentials;
mod destinations;
mod errors;
mod fake;
mod faults;
mod hangs;
mod harness;
mod inspect;
mod interrupt;
mod key_file_s3;
mod load;
mod ls;
mod messages;
mod mv;
mod offline;
mod progress;
mod regions;
mod report;
mod rewrap;
mod rm;
mod round_trip;
mod s3ec;
mod secrets;
mod seed_objects;
mod shard;
mod single_put;
mod special;
mod sync;
mod tls;
mod upgrade;
mod v2;
mod verify;
