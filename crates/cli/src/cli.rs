//! Command-line interface definition.

use std::path::PathBuf;

use atrest_s3::S3Uri;
use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  runtime failure (network, S3 or KMS error, local I/O)
  2  usage error (bad arguments, invalid S3 URI, missing configuration)
  3  not found or access denied (bucket, object, KMS key, data.key, input file, credentials)
  4  the object cannot be trusted: corrupted, not an atrest object, or wrong KMS key";

/// Client-side envelope encryption for Amazon S3 with AWS KMS keys.
#[derive(Debug, Parser)]
#[command(name = "atrest", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// More log output on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// AWS settings; unset ones come from the standard AWS configuration chain
/// (environment, shared config and credentials files, instance role).
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// Named profile from the AWS config files [env: AWS_PROFILE]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region [env: AWS_REGION]
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// Endpoint for S3 and KMS, e.g. a local emulator; S3 then uses
    /// path-style addressing [env: AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL_KMS]
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a data key under a KMS key and save it, wrapped, to ./data.key.
    ///
    /// The plaintext key never leaves KMS. An existing data.key is replaced:
    /// it is not needed to decrypt objects already written (each object
    /// carries its own wrapped key).
    CreateDataKey {
        /// KMS key id, key ARN, alias name (alias/NAME) or alias ARN.
        key_id: String,

        /// Where to write the wrapped key.
        #[arg(long, value_name = "PATH", default_value = "data.key")]
        data_key: PathBuf,
    },

    /// Encrypt FILE (or `-` for stdin) and upload it to S3URI.
    #[command(visible_alias = "encrypt")]
    EncryptWithKms {
        /// File to encrypt, or `-` for standard input.
        file: PathBuf,

        /// Destination, s3://BUCKET/KEY.
        #[arg(value_parser = parse_s3_uri)]
        uri: S3Uri,

        /// Wrapped data key made by `create-data-key`.
        #[arg(long, value_name = "PATH", default_value = "data.key")]
        data_key: PathBuf,

        /// Object format to write.
        #[arg(long, value_enum, default_value_t = Format::V1)]
        format: Format,

        #[command(flatten)]
        transfer: TransferArgs,
    },

    /// Download S3URI, decrypt it, and write FILE (or `-` for stdout).
    ///
    /// FILE is written through a temporary file beside it and renamed into
    /// place only when the whole object has decrypted; on failure an
    /// existing FILE is left untouched.
    #[command(visible_alias = "decrypt")]
    DecryptWithKms {
        /// Source, s3://BUCKET/KEY.
        #[arg(value_parser = parse_s3_uri)]
        uri: S3Uri,

        /// Output file, or `-` for standard output.
        file: PathBuf,
    },
}

/// Object formats atrest writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The original Node tool's format: AES-256-CBC, unauthenticated.
    V1,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Multipart part size in MiB (at least 5); smaller objects use one PUT.
    #[arg(long, value_name = "MiB", default_value_t = 8, value_parser = clap::value_parser!(u32).range(5..=5120))]
    pub part_size: u32,

    /// Parts uploaded concurrently.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
}

fn parse_s3_uri(s: &str) -> Result<S3Uri, String> {
    S3Uri::parse(s).map_err(|e| e.to_string())
}
