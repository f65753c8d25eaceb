//! Command-line interface definition.

use std::path::PathBuf;

use atrest_s3::S3Uri;
use atrest_transfer::manifest::{ManifestSource, Shard};
use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  runtime failure (network, S3 or KMS error, local I/O)
  2  usage error (bad arguments, invalid S3 URI or endpoint URL, unknown --profile,
     missing configuration, a key file of the wrong length or readable by others)
  3  not found or access denied (bucket, object, KMS key, data.key, key file, input
     file, credentials)
  4  the object cannot be trusted: corrupted, not an atrest object, or wrong KMS key
     or key file
  130, 143  interrupted by SIGINT or SIGTERM";

/// The longest time limit taken (a year): 0 already means none, and the
/// SDK cannot count far larger ones (it panicked).
const MAX_TIMEOUT: u64 = 365 * 24 * 3600;

/// The heading of the options every command takes.
const GLOBAL: &str = "Global options";

const CP_EXAMPLES: &str = "\
Examples:
  atrest cp report.pdf s3://bucket/reports/ --key alias/reports
  atrest cp s3://bucket/reports/report.pdf .
  atrest cp -r photos s3://bucket/photos --jobs 8
  atrest cp -r s3://bucket/photos s3://backup/photos";

const MV_EXAMPLES: &str = "\
Examples:
  atrest mv report.pdf s3://bucket/reports/ --key alias/reports
  atrest mv s3://bucket/inbox/report.pdf .
  atrest mv -r s3://bucket/incoming s3://bucket/archive";

const SYNC_EXAMPLES: &str = "\
Examples:
  atrest sync photos s3://bucket/photos --key alias/photos
  atrest sync s3://bucket/photos photos --delete
  atrest sync . s3://bucket/site --exclude '*.tmp' --dryrun
  atrest sync s3://bucket/photos s3://backup/photos --delete";

const ENCRYPT_EXAMPLES: &str = "\
Examples:
  atrest encrypt report.pdf s3://bucket/reports/report.pdf
  atrest encrypt -r photos s3://bucket/photos --key alias/photos --jobs 8
  tar c dir | atrest encrypt - s3://bucket/dir.tar --key alias/backup";

const DECRYPT_EXAMPLES: &str = "\
Examples:
  atrest decrypt s3://bucket/reports/report.pdf report.pdf
  atrest decrypt -r s3://bucket/photos photos --expect-context team=photos
  atrest decrypt s3://bucket/dir.tar - | tar x";

const REWRAP_EXAMPLES: &str = "\
Examples:
  atrest rewrap s3://bucket/reports/q3.pdf --to-key alias/reports-2027
  atrest rewrap -r s3://bucket/reports/ --to-key alias/reports-2027 --dryrun
  atrest rewrap -r s3://bucket --to-key alias/new --json > rewrap-report.json";

const VERIFY_EXAMPLES: &str = "\
Examples:
  atrest verify s3://bucket/backups/2026-11-30.tar
  atrest verify -r s3://bucket/backups/ --jobs 8
  atrest verify -r s3://bucket --manifest manifest.csv --shard 0/4 --json";

const UPGRADE_EXAMPLES: &str = "\
Examples:
  atrest upgrade -r s3://bucket/legacy/ --dryrun
  atrest upgrade -r s3://bucket/legacy/
  atrest upgrade s3://bucket/legacy/old.bin --key alias/per-object";

const LS_EXAMPLES: &str = "\
Examples:
  atrest ls
  atrest ls s3://bucket/reports/
  atrest ls -r s3://bucket --json > inventory.json";

const INSPECT_EXAMPLES: &str = "\
Examples:
  atrest inspect s3://bucket/reports/report.pdf
  atrest inspect report.pdf.atrest --json";

const DATA_KEY_EXAMPLES: &str = "\
Examples:
  atrest create-data-key alias/reports
  atrest rewrap-data-key --to-key alias/reports-2027";

const KEYGEN_EXAMPLES: &str = "\
Examples:
  atrest keygen ~/.config/atrest/backup.key
  atrest encrypt --key-file ~/.config/atrest/backup.key db.dump db.dump.atrest";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  atrest completions bash > /etc/bash_completion.d/atrest
  atrest completions zsh > \"${fpath[1]}/_atrest\"";

/// The command line as `--help`, completions and the man page show it.
///
/// clap's derive attaches one help text to a flag that several commands
/// share; here each direction gets its own (`decrypt --help` says nothing
/// of uploads), and the commands that use no AWS at all (`completions`,
/// `keygen`) or draw no progress bar do not list those global options.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let upload_only = |c: clap::Command| {
        c.mut_arg("part_size", |a| {
            a.help("Multipart upload part size (a bare number is MiB; or 8M, 8MiB, 1G): objects smaller than one part go up in a single PUT. From 5M to 5G")
        })
        .mut_arg("concurrency", |a| a.help("Parts uploaded concurrently [default: 4]"))
        .mut_arg("key_file", |a| {
            a.help("Wrap each object's fresh data key with this key file (made by `atrest keygen`) instead of KMS: no AWS is needed for the key. v2 only")
        })
        .mut_arg("recursive", |a| {
            a.help("Every file under the directory FILE to the prefix S3URI, keeping relative paths; `s3://BUCKET` is the whole bucket")
        })
        .mut_arg("dryrun", |a| {
            a.help("Print what would be uploaded (`(dryrun) upload: a to s3://b/a`) and upload nothing: no KMS request, nothing written")
        })
        // A manifest lists S3 objects: an upload has none to take. Nor has
        // it an S3 source (its region, archived objects, a copy's metadata).
        .mut_arg("manifest", |a| a.hide(true))
        .mut_arg("source_region", |a| a.hide(true))
        .mut_arg("ignore_glacier_warnings", |a| a.hide(true))
        .mut_arg("force_glacier_transfer", |a| a.hide(true))
        .mut_arg("metadata_directive", |a| a.hide(true))
        .mut_arg("shard", |a| {
            a.help("With --recursive, only the files whose destination key falls in shard I of N (0 <= I < N), by a stable hash of bucket and key: N workers given 0/N to N-1/N upload every file exactly once")
        })
    };
    let download_only = |c: clap::Command| {
        c.mut_arg("part_size", |a| {
            a.help("Size of each ranged GET (a bare number is MiB; or 8M, 8MiB, 1G). From 5M to 5G")
        })
        .mut_arg("concurrency", |a| {
            a.help("Ranged GET streams at once [default: 8 into a file; 12 to stdout or with --range]")
        })
        .mut_arg("key_file", |a| {
            a.help("The key file (made by `atrest keygen`) for objects encrypted with --key-file; objects wrapped by KMS are then refused (read them in a run without it)")
        })
        .mut_arg("recursive", |a| {
            a.help("Every object under the prefix S3URI into the directory FILE, keeping relative paths; `s3://BUCKET` is the whole bucket")
        })
        .mut_arg("dryrun", |a| {
            a.help("Print what would be downloaded (`(dryrun) download: s3://b/a to a`) and download nothing: no KMS request, nothing written")
        })
        // A download reads no local tree.
        .mut_arg("follow_symlinks", |a| a.hide(true))
        .mut_arg("no_follow_symlinks", |a| a.hide(true))
    };
    let mut cmd = Cli::command()
        .mut_subcommand("encrypt", upload_only)
        .mut_subcommand("decrypt", download_only);
    for (name, done) in [
        ("rewrap", "rewrapped"),
        ("verify", "verified"),
        ("upgrade", "upgraded"),
    ] {
        let help = format!("Objects {done} at once with --recursive");
        cmd = cmd.mut_subcommand(name, |c| c.mut_arg("jobs", |a| a.help(help)));
    }
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    // A global option a command should not list: a hidden argument of the
    // command's own with its id, which clap then does not propagate there.
    let hide = |names: &'static [&'static str]| {
        let globals = globals.clone();
        move |mut c: clap::Command| {
            for arg in globals
                .iter()
                .filter(|a| names.is_empty() || names.contains(&a.get_id().as_str()))
            {
                c = c.arg(arg.clone().global(false).hide(true));
            }
            c
        }
    };
    let no_progress = &["no_progress"];
    cmd.mut_subcommand("completions", hide(&[]))
        .mut_subcommand("keygen", hide(&[]))
        .mut_subcommand("inspect", hide(no_progress))
        .mut_subcommand("ls", hide(no_progress))
        .mut_subcommand("rm", hide(no_progress))
        .mut_subcommand("create-data-key", hide(no_progress))
        .mut_subcommand("rewrap-data-key", hide(no_progress))
}

/// Client-side envelope encryption for Amazon S3 with AWS KMS keys.
#[derive(Debug, Parser)]
#[command(name = "atrest", bin_name = "atrest", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// More log output on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,

    /// Print only errors, as the AWS CLI's --quiet.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,

    /// Print only errors and warnings, as the AWS CLI's option of that
    /// name (implies --quiet for everything else).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub only_show_errors: bool,

    /// No progress bar (it is drawn on stderr only when stderr is a
    /// terminal, and never with --quiet).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_progress: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// AWS settings; unset ones come from the standard AWS configuration chain
/// (environment, shared config and credentials files, instance role).
#[derive(Debug, Args)]
#[command(next_help_heading = GLOBAL)]
pub struct AwsArgs {
    /// Named profile from the AWS config files; its credentials win over
    /// exported AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (the variable
    /// AWS_PROFILE does not) [env: AWS_PROFILE]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region [env: AWS_REGION]
    #[arg(long, global = true, value_name = "REGION", value_parser = parse_region)]
    pub region: Option<String>,

    /// Endpoint for S3 and KMS, e.g. a local emulator; S3 then uses
    /// path-style addressing [env: AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL_KMS]
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// PEM file of the certificate authorities to trust for TLS instead of
    /// the system's, as the AWS CLI's (a TLS-inspecting proxy, a private
    /// endpoint); else the profile's `ca_bundle`.
    #[arg(long, global = true, value_name = "PATH", env = "AWS_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,

    /// Seconds to wait for a connection to S3 or KMS; 0 waits forever.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT))]
    pub cli_connect_timeout: u64,

    /// Seconds to wait for S3 or KMS to begin answering a request, once
    /// the request is sent; 0 waits forever. A failed attempt is retried (3
    /// attempts in all).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT))]
    pub cli_read_timeout: u64,

    /// `requester`: you pay for the S3 requests and transfer (a Requester
    /// Pays bucket refuses others' requests without it).
    #[arg(long, global = true, value_name = "PAYER", value_parser = ["requester"])]
    pub request_payer: Option<String>,

    /// Keys per listing request, 1 to 1000 (S3's default): smaller pages
    /// answer sooner, in more requests.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub page_size: Option<i32>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a data key under a KMS key and save it, wrapped, to ./data.key.
    ///
    /// The plaintext key never leaves KMS. An existing data.key is replaced:
    /// it is not needed to decrypt objects already written (each object
    /// carries its own wrapped key).
    #[command(after_help = DATA_KEY_EXAMPLES)]
    CreateDataKey {
        /// KMS key id, key ARN, alias name (alias/NAME) or alias ARN.
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        key_id: String,

        /// Where to write the wrapped key.
        #[arg(long, value_name = "PATH", default_value = "data.key", value_parser = clap::builder::OsStringValueParser::new().try_map(local_path))]
        data_key: PathBuf,
    },

    /// Copy a local file to S3, encrypting it, or an S3 object to a local
    /// file, decrypting it, as `aws s3 cp` does.
    ///
    /// The direction follows from which side is s3://; with both, the
    /// objects are copied inside S3 as they are (still encrypted, with
    /// their metadata and tags). `-` is stdin (SRC) or stdout (DST). An S3 destination ending in `/`
    /// receives the file's name; a local directory receives the key's base
    /// name. With --recursive, SRC is a directory and DST a prefix, or the
    /// other way round. The same as `atrest encrypt` and `atrest decrypt`,
    /// whose flags it takes (the upload flags apply to uploads only, the
    /// download flags to downloads only).
    #[command(after_help = CP_EXAMPLES)]
    Cp(CpArgs),

    /// Move a local file to S3, encrypting it, or an S3 object to a local
    /// file, decrypting it, as `aws s3 mv` does: `cp`, then the source is
    /// removed.
    ///
    /// The source goes only once its copy is whole, and only as it was
    /// read: a file changed while it was read is not uploaded, one changed
    /// after is kept, and an object is
    /// deleted with If-Match of the ETag it was read at (so one replaced
    /// meanwhile stays). Between two s3:// locations the object is copied
    /// inside S3, then deleted (with its S3 Encryption Client instruction
    /// file). Not for streams (`-`) or --range; with --recursive, each
    /// file or object is moved on its own, and one that fails stays.
    #[command(after_help = MV_EXAMPLES)]
    Mv(CpArgs),

    /// Delete objects, as `aws s3 rm` does (`delete: s3://b/k`): one, or
    /// with --recursive every one under a prefix. An AWS S3 Encryption
    /// Client object's instruction file (KEY.instruction) is deleted with
    /// it, after it; one whose object stays is kept.
    Rm(RmArgs),

    /// Encrypt FILE (or `-` for stdin) and upload it to S3URI, or write it
    /// to a local file OUT. `encrypt-with-kms` is the original Node tool's
    /// name for it.
    ///
    /// A local OUT (anything not starting with s3://; `-` for stdout) is
    /// written through a temporary file beside it, renamed into place when
    /// complete. With --key-file and a local OUT no AWS configuration is
    /// read at all.
    #[command(name = "encrypt", visible_alias = "encrypt-with-kms", after_help = ENCRYPT_EXAMPLES)]
    EncryptWithKms {
        /// File to encrypt, or `-` for standard input.
        #[arg(value_parser = clap::builder::OsStringValueParser::new().try_map(local_path))]
        file: PathBuf,

        /// Destination: s3://BUCKET/KEY, or a local file (`-` for stdout).
        #[arg(value_name = "S3URI|OUT", value_parser = Side(Target::parse_prefix))]
        uri: Target,

        #[command(flatten)]
        key_file: KeyFileArg,

        #[command(flatten)]
        encrypt: EncryptArgs,

        #[command(flatten)]
        transfer: TransferArgs,

        #[command(flatten)]
        bulk: BulkArgs,
    },

    /// Download S3URI (or read a local file IN), decrypt it, and write FILE
    /// (or `-` for stdout). `decrypt-with-kms` is the original Node tool's
    /// name for it.
    ///
    /// A regular FILE is written through a temporary file beside it and
    /// renamed into place only when the whole object has decrypted; on
    /// failure an existing FILE is left untouched. A device or FIFO is
    /// written in place, as stdout is; a directory receives the key's base
    /// name. With --key-file and a local IN no AWS configuration is read
    /// at all.
    #[command(name = "decrypt", visible_alias = "decrypt-with-kms", after_help = DECRYPT_EXAMPLES)]
    DecryptWithKms {
        /// Source: s3://BUCKET/KEY, or a local file holding an object (`-`
        /// for stdin).
        #[arg(value_name = "S3URI|IN", value_parser = Side(Target::parse_prefix))]
        uri: Target,

        /// Output file, or `-` for standard output.
        #[arg(value_parser = clap::builder::OsStringValueParser::new().try_map(local_path))]
        file: PathBuf,

        #[command(flatten)]
        key_file: KeyFileArg,

        #[command(flatten)]
        decrypt: DecryptArgs,

        #[command(flatten)]
        transfer: TransferArgs,

        #[command(flatten)]
        bulk: BulkArgs,
    },

    /// Make a prefix match a directory, a directory match a prefix, or a
    /// prefix match another, transferring only what is new or changed, as
    /// `aws s3 sync` does.
    ///
    /// A file is transferred when the destination lacks it, when the sizes
    /// differ (on the S3 side the plaintext size, from the listed size and
    /// the objects' layout), or when the source is newer (uploads: the file
    /// changed after the object was written). Uploads record the file's
    /// modification time in the object's metadata; downloads give the file
    /// that time. A local file newer than the object is kept and reported,
    /// not overwritten: --exact-timestamps replaces it. Between two
    /// prefixes objects are copied inside S3 as they are (still encrypted,
    /// no key needed) when the listed sizes differ or the source was
    /// written after its copy. Listings decide; a re-run over an unchanged
    /// tree transfers nothing.
    #[command(after_help = SYNC_EXAMPLES)]
    Sync {
        /// A local directory, or s3://BUCKET[/PREFIX].
        #[arg(value_name = "SRC", value_parser = Side(Target::parse_prefix))]
        src: Target,

        /// s3://BUCKET[/PREFIX], or a local directory (when SRC is a
        /// prefix).
        #[arg(value_name = "DST", value_parser = Side(Target::parse_prefix))]
        dst: Target,

        #[command(flatten)]
        sync: SyncArgs,

        #[command(flatten)]
        key_file: KeyFileArg,

        #[command(flatten)]
        encrypt: EncryptArgs,

        #[command(flatten)]
        decrypt: DecryptArgs,

        #[command(flatten)]
        transfer: TransferArgs,

        #[command(flatten)]
        many: ManyArgs,
    },

    /// Move objects to another KMS key without re-uploading them: only the
    /// wrapped data key in the header changes (KMS ReEncrypt, same
    /// encryption context); the body is copied inside S3.
    ///
    /// Objects up to 5 MiB are rewritten with one PUT; larger ones with a
    /// multipart upload whose first part (the new header and 5 MiB of the
    /// body) passes through atrest and whose other parts are copied by S3.
    /// Every write is conditional on the ETag read, so an object changed
    /// meanwhile fails and stays as it is. Metadata, standard headers,
    /// storage class and tags are kept; ACLs and object lock settings are
    /// not. An object already under the target key is skipped.
    #[command(after_help = REWRAP_EXAMPLES)]
    Rewrap {
        /// The target KMS key: key id, key ARN, alias/NAME or alias ARN.
        #[arg(long, value_name = "KMS_KEY", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        to_key: String,

        /// Say what would be done (asking KMS, which stores nothing), but
        /// write nothing.
        #[arg(long)]
        dryrun: bool,

        /// Require this encryption context pair (repeatable; all pairs
        /// must match the object's exactly). A rewrap never changes the
        /// context: an object with another one is refused.
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_pair)]
        context: Vec<(String, String)>,

        #[command(flatten)]
        objects: ObjectsArgs,
    },

    /// Check that objects decrypt, writing nothing: download each one (by
    /// parallel ranged GETs), unwrap its data key with KMS and decrypt it.
    ///
    /// v2: every frame is authenticated, so a verified object is exactly
    /// what was encrypted. v1 has no authentication: only its padding can
    /// be checked, and the report says so. S3 Encryption Client objects:
    /// their GCM tag (legacy CBC ones fail). Anything else fails. One line
    /// per object on stdout; exit 0 if every object verified, 4 if any did
    /// not.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify {
        #[command(flatten)]
        objects: ObjectsArgs,

        #[command(flatten)]
        key_file: KeyFileArg,

        #[command(flatten)]
        transfer: TransferArgs,
    },

    /// Re-encrypt v1 objects (and, with --key, AWS S3 Encryption Client
    /// objects) as v2, in place: each is decrypted as it
    /// downloads and encrypted as it uploads (constant memory) to a
    /// temporary object beside it, which is verified and then copied over
    /// the original inside S3.
    ///
    /// The replacement is conditional on the ETag read (If-Match; atrest
    /// also re-checks it just before, for servers that ignore the
    /// condition): an object changed meanwhile is left as it is. Metadata,
    /// standard headers, storage class and tags are kept, as by rewrap.
    /// v2 objects are skipped. On a versioned bucket the v1 version
    /// remains.
    #[command(after_help = UPGRADE_EXAMPLES)]
    Upgrade {
        /// A fresh data key per object under this KMS key (key id, key
        /// ARN, alias/NAME or alias ARN), instead of the object's own
        /// shared data key; needed for S3 Encryption Client objects.
        #[arg(long = "key", value_name = "KMS_KEY", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        kms_key: Option<String>,

        /// Say what would be upgraded, but write nothing.
        #[arg(long)]
        dryrun: bool,

        #[command(flatten)]
        objects: ObjectsArgs,
    },

    /// List the objects under a prefix with what their headers say, without
    /// KMS: format (v1, v2, S3 Encryption Client, not atrest), plaintext
    /// size (v1: a 16-byte range), frame size, shared or per-object data
    /// key, encryption context and last-modified time.
    ///
    /// The key part of S3URI is a prefix, as for `aws s3 ls`; without
    /// --recursive, keys with a further `/` show as `PRE name/`. A prefix
    /// with nothing under it fails (exit 1), as with `aws s3 ls`. Without
    /// S3URI, the account's buckets, each with its creation time.
    #[command(after_help = LS_EXAMPLES)]
    Ls {
        /// s3://BUCKET/PREFIX, or s3://BUCKET for the whole bucket; none
        /// for the list of buckets.
        #[arg(value_name = "S3URI", value_parser = parse_s3_prefix)]
        uri: Option<S3Uri>,

        /// Every object under the prefix, at any depth.
        #[arg(short, long)]
        recursive: bool,

        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,

        /// Sizes in KiB, MiB, GiB, ... (as `aws s3 ls --human-readable`).
        #[arg(long)]
        human_readable: bool,

        /// End with the number of objects and their total stored size (as
        /// `aws s3 ls --summarize`).
        #[arg(long)]
        summarize: bool,

        #[command(flatten)]
        select: SelectArgs,
    },

    /// Re-wrap the shared data key file (data.key) under another KMS key,
    /// inside KMS; the file is replaced atomically (mode 0600).
    ///
    /// Objects already encrypted with it keep their own copy of the old
    /// wrapped key: move them with `atrest rewrap`.
    #[command(after_help = DATA_KEY_EXAMPLES)]
    RewrapDataKey {
        /// The target KMS key: key id, key ARN, alias/NAME or alias ARN.
        #[arg(long, value_name = "KMS_KEY", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        to_key: String,

        /// The wrapped key file to re-wrap in place.
        #[arg(long, value_name = "PATH", default_value = "data.key", value_parser = clap::builder::OsStringValueParser::new().try_map(local_path))]
        data_key: PathBuf,
    },

    /// Make a key file for --key-file: 32 random bytes (an AES-256 key).
    ///
    /// Written with mode 0600 through a temporary file, and never over an
    /// existing file. Without the key file, objects encrypted with it cannot
    /// be decrypted: keep a copy somewhere safe. A key file that its group
    /// or others may access is refused, as ssh refuses such private keys.
    #[command(after_help = KEYGEN_EXAMPLES)]
    Keygen {
        /// Where to write the key file.
        #[arg(value_parser = clap::builder::OsStringValueParser::new().try_map(local_path))]
        path: PathBuf,
    },

    /// Print a shell completion script to stdout.
    ///
    /// bash: `atrest completions bash > /etc/bash_completion.d/atrest`;
    /// zsh: into a directory on $fpath as `_atrest`; fish:
    /// `~/.config/fish/completions/atrest.fish`; PowerShell: add the output
    /// to $PROFILE.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) to stdout, or write every page (atrest.1,
    /// atrest-cp.1, ...) into a directory; used by `cargo xtask release`.
    #[command(hide = true)]
    Man {
        /// Write atrest.1 and a page per command here (it must exist).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },

    /// Show what an object's header says (format, sizes, encryption
    /// context) without KMS, reading only its first bytes.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect {
        /// s3://BUCKET/KEY, or a local file holding an object (`-` for
        /// stdin).
        #[arg(value_name = "S3URI|PATH", value_parser = Side(Target::parse))]
        target: Target,

        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// A plaintext byte range: `START-END` inclusive, `START-`, or `-N`.
pub use atrest_transfer::{ByteRange, PlainRange};

/// An HTTP byte range, with or without its `bytes=` unit: `START-END`,
/// `START-`, or `-N` (the last N bytes).
fn parse_range(s: &str) -> Result<PlainRange, String> {
    let bad = || format!("`{s}` is not a byte range: expected START-END, START- or -N");
    let spec = s.strip_prefix("bytes=").unwrap_or(s);
    let (start, end) = spec.split_once('-').ok_or_else(bad)?;
    if start.is_empty() {
        return end.parse().map(PlainRange::Last).map_err(|_| bad());
    }
    let start = start.parse().map_err(|_| bad())?;
    let end = match end {
        "" => None,
        end => Some(end.parse().map_err(|_| bad())?),
    };
    if end.is_some_and(|end| end < start) {
        return Err(format!("`{s}`: the range ends before it starts"));
    }
    Ok(PlainRange::Span(ByteRange { start, end }))
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// Parses `64K`, `1M`, `65536`: a power of two from 4 KiB to 16 MiB, returned
/// as its exponent.
/// A region name as the AWS CLI accepts one (botocore's rule: letters,
/// digits and inner hyphens, 1 to 63): anything else would only fail at
/// the first request, or go to a host of that name.
pub fn parse_region(s: &str) -> Result<String, String> {
    let inner = s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    match (s.is_empty(), inner) {
        (true, _) => Err("a region name is required (like us-east-1)".into()),
        (false, true) => Ok(s.to_owned()),
        (false, false) => Err(format!(
            "`{}` is not a region name (like us-east-1)",
            crate::escape(s)
        )),
    }
}

fn parse_frame_size(s: &str) -> Result<u8, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let scale: u64 = match unit {
        "" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        _ => return Err(format!("`{s}`: expected a size like 64K or 1M")),
    };
    let size = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{s}`: expected a size like 64K or 1M"))?;
    let exponent = size.trailing_zeros();
    let range = atrest_format::v2::MIN_FRAME_EXPONENT..=atrest_format::v2::MAX_FRAME_EXPONENT;
    if !size.is_power_of_two() || !range.contains(&(exponent as u8)) {
        return Err(format!(
            "`{s}`: the frame size must be a power of two from 4K to 16M"
        ));
    }
    Ok(exponent as u8)
}

/// Object formats atrest writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The original Node tool's format: AES-256-CBC, unauthenticated.
    V1,
    /// Authenticated, key-committing AES-256-GCM frames (docs/FORMAT.md).
    V2,
    /// The AWS S3 Encryption Client's V3 (key-committing AES-256-GCM,
    /// metadata in the object), readable by its Java, Python, Go clients.
    #[value(name = "s3ec-v3")]
    S3ecV3,
}

impl Format {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::V1 => "v1",
            Format::V2 => "v2",
            Format::S3ecV3 => "s3ec-v3",
        }
    }

    /// The engine's name for it.
    pub fn engine(self) -> atrest_transfer::Format {
        match self {
            Format::V1 => atrest_transfer::Format::V1,
            Format::V2 => atrest_transfer::Format::V2,
            Format::S3ecV3 => atrest_transfer::Format::S3ecV3,
        }
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Transfer")]
pub struct TransferArgs {
    /// Part size (a bare number is MiB; or 8M, 8MiB, 1G): multipart upload
    /// parts (objects smaller than one part use a single PUT) and ranged
    /// GETs when downloading. From 5M to 5G.
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = parse_part_size)]
    pub part_size: u64,

    /// Parts transferred concurrently [default: 4 uploading; downloading,
    /// 8 ranged GET streams into a file, 12 to stdout or with --range].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: Option<u32>,
}

/// Data-key reuse by default for many objects (`--recursive`, `upgrade`).
pub const KEY_CACHE: atrest_kms::CacheLimits = atrest_kms::CacheLimits {
    max_objects: 1000,
    max_age: std::time::Duration::from_secs(300),
};
/// `--key-file`, for both directions.
#[derive(Debug, Args)]
pub struct KeyFileArg {
    /// The key file (made by `atrest keygen`) that wraps data keys instead
    /// of KMS: encrypting, a fresh data key per object, no AWS needed for
    /// the key (v2 only); decrypting, needed exactly for objects written
    /// with --key-file.
    #[arg(id = "key_file", long = "key-file", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

/// How uploads encrypt, and the properties of the objects they write:
/// the flags `encrypt`, `cp` and `sync` share.
#[derive(Debug, Args)]
#[command(next_help_heading = "Encryption (uploads)")]
pub struct EncryptArgs {
    /// Wrapped data key made by `create-data-key` (shared by every
    /// object encrypted with it); not with --key or --key-file.
    #[arg(long, value_name = "PATH", default_value = "data.key", value_parser = clap::builder::OsStringValueParser::new().try_map(local_path))]
    pub data_key: PathBuf,

    /// Use a fresh data key for each object, generated under this KMS key
    /// (key id, key ARN, alias/NAME or alias ARN) with the encryption
    /// context, instead of data.key. v2 and s3ec-v3 (which needs it); not
    /// v1.
    #[arg(
        long = "key",
        visible_alias = "kms-key-id",
        value_name = "KEY_ID",
        env = "ATREST_KMS_KEY",
        hide_env_values = true
    )]
    pub kms_key: Option<String>,

    /// Encryption context pair stored in the object and bound to the
    /// data key by KMS (with --key); repeatable. v2 and s3ec-v3; not v1.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub context: Vec<(String, String)>,

    /// Object format to write: v2, or for readers that need them s3ec-v3
    /// (needs --key) or v1 (unauthenticated).
    #[arg(long, value_enum, default_value_t = Format::V2)]
    pub format: Format,

    /// v2 plaintext frame size: a power of two from 4K to 16M [default:
    /// 64K]. v2 only.
    #[arg(long, value_name = "SIZE", value_parser = parse_frame_size)]
    pub frame_size: Option<u8>,

    /// Objects smaller than this (a bare number is MiB; or 64M, 1G) go up
    /// in one streaming PUT rather than in parts (default: the part size,
    /// so only small files do). Faster on servers whose multipart
    /// completion copies the parts; on S3 itself parallel parts are
    /// faster. A streaming PUT is not retried. Stdin always uses parts (its
    /// size is unknown).
    #[arg(long, value_name = "SIZE", value_parser = parse_part_size)]
    pub multipart_threshold: Option<u64>,

    /// About how large a stream (stdin, a pipe) is, in bytes (or 100G,
    /// 2T), as the AWS CLI's flag: its parts are sized to fit S3's 10,000
    /// from the start (without it, a stream's parts double in size after
    /// every 1,000). A file's own length is used instead.
    #[arg(long, value_name = "BYTES", value_parser = parse_object_size)]
    pub expected_size: Option<u64>,

    #[command(flatten)]
    pub properties: PropertiesArgs,
}

/// The S3 object properties of uploads, with the AWS CLI's names.
#[derive(Debug, Args)]
#[command(next_help_heading = "Object properties (uploads)")]
pub struct PropertiesArgs {
    /// Content-Type [default: guessed from the file's extension, as the
    /// AWS CLI does; none for stdin].
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,

    /// No Content-Type guessed from the file's extension (S3 then stores
    /// its default, binary/octet-stream).
    #[arg(long)]
    pub no_guess_mime_type: bool,

    /// Copies between s3:// locations: COPY the source's metadata and
    /// headers (the default), or REPLACE them with the flags given (atrest's
    /// and the S3 Encryption Client's entries stay); --metadata alone
    /// means REPLACE, as in the AWS CLI.
    #[arg(long, value_name = "DIRECTIVE", value_parser = ["COPY", "REPLACE"])]
    pub metadata_directive: Option<String>,

    /// Content-Disposition, e.g. `attachment; filename="a.pdf"`.
    #[arg(long, value_name = "VALUE")]
    pub content_disposition: Option<String>,

    /// Content-Encoding (of the plaintext, e.g. gzip: S3 stores the
    /// encrypted bytes, so only clients that decrypt can honour it).
    #[arg(long, value_name = "VALUE")]
    pub content_encoding: Option<String>,

    /// Content-Language.
    #[arg(long, value_name = "VALUE")]
    pub content_language: Option<String>,

    /// Cache-Control.
    #[arg(long, value_name = "VALUE")]
    pub cache_control: Option<String>,

    /// Expires, when caches should stop serving the object: an RFC 3339
    /// time (`2027-01-31T12:00:00Z`) or an HTTP date.
    #[arg(long, value_name = "TIME", value_parser = parse_expires)]
    pub expires: Option<aws_sdk_s3::primitives::DateTime>,

    /// User metadata entries (x-amz-meta-KEY), KEY=VALUE or
    /// K1=V1,K2=V2; repeatable. With atrest's own entries they must fit
    /// S3's 2 KB limit.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_pairs)]
    pub metadata: Vec<Pairs>,

    /// Storage class: STANDARD, STANDARD_IA, ONEZONE_IA,
    /// INTELLIGENT_TIERING, GLACIER, DEEP_ARCHIVE, GLACIER_IR, ...
    #[arg(long, value_name = "CLASS", value_parser = parse_storage_class)]
    pub storage_class: Option<aws_sdk_s3::types::StorageClass>,

    /// Object tags, URL-encoded as S3 takes them: `k1=v1&k2=v2`.
    #[arg(long, value_name = "TAGS", value_parser = parse_tagging)]
    pub tagging: Option<Pairs>,

    /// Server-side encryption on top of atrest's: AES256 (SSE-S3) or
    /// aws:kms (SSE-KMS), as bucket policies often require.
    #[arg(long, value_name = "ALGORITHM", value_parser = parse_sse)]
    pub sse: Option<aws_sdk_s3::types::ServerSideEncryption>,

    /// With --sse aws:kms: the KMS key S3 encrypts with (default: the
    /// bucket's or S3's own).
    #[arg(long, value_name = "KEY_ID")]
    pub sse_kms_key_id: Option<String>,

    /// Canned ACL: private, bucket-owner-full-control, bucket-owner-read,
    /// public-read, ...
    #[arg(long, value_name = "ACL", value_parser = parse_acl)]
    pub acl: Option<aws_sdk_s3::types::ObjectCannedAcl>,
}

/// What downloads check: the flags `decrypt`, `cp` and `sync` share.
#[derive(Debug, Args)]
#[command(next_help_heading = "Decryption (downloads)")]
pub struct DecryptArgs {
    /// Require this encryption context pair in the object (v2 or an S3
    /// Encryption Client object); repeatable. Fails if absent or different.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub expect_context: Vec<(String, String)>,

    /// Decrypt only plaintext bytes START-END (inclusive, as HTTP Range;
    /// `bytes=` may lead), START- (to the end) or -N (the last N); fetches
    /// only the frames needed. Not for v1 objects; an S3 Encryption Client
    /// object is fetched whole and authenticated first (see
    /// --allow-legacy). Not with --recursive or sync.
    #[arg(long, value_name = "START-END", value_parser = parse_range, allow_hyphen_values = true)]
    pub range: Option<PlainRange>,

    /// Also decrypt the AWS S3 Encryption Client's unauthenticated legacy
    /// modes: AES-CBC objects, and --range of an AES-GCM object through
    /// AES-CTR without its tag. Tampering then goes undetected.
    #[arg(long)]
    pub allow_legacy: bool,
}

/// Many files: a directory and a key prefix.
#[derive(Debug, Args)]
#[command(next_help_heading = "Many files")]
pub struct BulkArgs {
    /// Every file under the directory SRC to the prefix DST (uploads), or
    /// every object under the prefix SRC into the directory DST
    /// (downloads), keeping relative paths; `s3://BUCKET` is the whole
    /// bucket.
    #[arg(short, long)]
    pub recursive: bool,

    /// Print what would be transferred (`(dryrun) upload: a to s3://b/a`)
    /// and transfer nothing: no KMS request, nothing written.
    #[arg(long, help_heading = Option::<&str>::None)]
    pub dryrun: bool,

    /// Skip a destination that exists (an object, or a local file), as
    /// `aws s3 cp --no-overwrite`.
    #[arg(long, help_heading = Option::<&str>::None)]
    pub no_overwrite: bool,

    #[command(flatten)]
    pub many: ManyArgs,

    #[command(flatten)]
    pub select: SelectArgs,

    #[command(flatten)]
    pub from_s3: FromS3Args,

    /// `mv`: each source is removed once its copy is whole.
    #[arg(skip)]
    pub move_source: bool,
}

/// What transfers from S3 take, with the AWS CLI's names: the source
/// bucket's region, and what to do with archived objects (S3 Glacier
/// Flexible Retrieval or Deep Archive, or an Intelligent-Tiering archive
/// tier).
#[derive(Debug, Args)]
pub struct FromS3Args {
    /// The source bucket's region, as the AWS CLI's flag (an S3 SRC):
    /// saves the one redirect by which atrest finds it otherwise.
    #[arg(long, value_name = "REGION", help_heading = Option::<&str>::None, value_parser = parse_region)]
    pub source_region: Option<String>,

    /// Leave out, quietly, the objects that are archived and not restored:
    /// no failure for them, and exit 0 if nothing else failed.
    #[arg(long, help_heading = Option::<&str>::None)]
    pub ignore_glacier_warnings: bool,

    /// Accepted for the AWS CLI's scripts: atrest always tries archived
    /// objects (a restored one is read or copied; one that is not fails,
    /// saying so).
    #[arg(long, help_heading = Option::<&str>::None)]
    pub force_glacier_transfer: bool,
}

/// What `rm` deletes.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// s3://BUCKET/KEY, or a prefix with --recursive (`s3://BUCKET` is
    /// the whole bucket).
    #[arg(value_parser = parse_s3_prefix)]
    pub uri: S3Uri,

    /// Every object under the prefix S3URI.
    #[arg(short, long)]
    pub recursive: bool,

    /// Print what would be deleted (`(dryrun) delete: s3://b/k`), and
    /// delete nothing.
    #[arg(long)]
    pub dryrun: bool,

    /// With --recursive.
    #[command(flatten)]
    pub filters: Filters,

    /// Objects deleted at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,

    /// Report as JSON Lines on stdout: a line per object, then (with
    /// --recursive) a summary.
    #[arg(long)]
    pub json: bool,
}

/// `--include` and `--exclude`: which paths under the directory or prefix
/// a run of many takes.
#[derive(Debug, Args)]
pub struct Filters {
    /// Take again relative paths matching this glob that an earlier
    /// --exclude left out (`*` also matches `/`); repeatable. Of the
    /// filters matching a path, the last given decides, as in the AWS CLI:
    /// `--exclude '*' --include '*.jpg'` takes only .jpg files.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Leave out relative paths matching this glob (`*` also matches
    /// `/`); repeatable; a later --include takes matches back.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// --include and --exclude in the order given (see
    /// [`Filters::order`]).
    #[arg(skip)]
    pub rules: Vec<atrest_fs::tree::Rule>,
}

/// The sides and flags of `cp` and `mv`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// A local file (`-` for stdin) or s3://BUCKET/KEY.
    #[arg(value_name = "SRC", value_parser = Side(Target::parse_prefix))]
    pub src: Target,

    /// s3://BUCKET/KEY or a local file (`-` for stdout).
    #[arg(value_name = "DST", value_parser = Side(Target::parse_prefix))]
    pub dst: Target,

    #[command(flatten)]
    pub key_file: KeyFileArg,

    #[command(flatten)]
    pub encrypt: EncryptArgs,

    #[command(flatten)]
    pub decrypt: DecryptArgs,

    #[command(flatten)]
    pub transfer: TransferArgs,

    #[command(flatten)]
    pub bulk: BulkArgs,
}

/// What runs over many files take (`--recursive` and `sync`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Many files")]
pub struct ManyArgs {
    /// Files transferred at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,

    #[command(flatten)]
    pub filters: Filters,

    /// Follow symbolic links to files and directories (the default, as in
    /// the AWS CLI).
    #[arg(long, overrides_with = "no_follow_symlinks")]
    pub follow_symlinks: bool,

    /// Leave symbolic links out of the local tree read, as the AWS CLI
    /// does (sync --delete then takes them as absent).
    #[arg(long, overrides_with = "follow_symlinks")]
    pub no_follow_symlinks: bool,

    /// Report as JSON Lines on stdout: one object a line per file (with
    /// --recursive or sync; for one object, its line with the format and
    /// KMS calls), then with many files a summary line.
    #[arg(long)]
    pub json: bool,

    /// Reuse one data key (generated with --key, or unwrapped by KMS) for
    /// at most N objects; 1 turns reuse off. Each object still derives its
    /// own encryption key (v2).
    #[arg(long, value_name = "N", default_value_t = KEY_CACHE.max_objects, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_cache_max_objects: u64,

    /// Reuse one data key for at most this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = KEY_CACHE.max_age.as_secs())]
    pub key_cache_max_age: u64,
}

/// The objects of `rewrap`, `verify` and `upgrade`: one, or every one
/// under a prefix.
#[derive(Debug, Args)]
pub struct ObjectsArgs {
    /// s3://BUCKET/KEY, or a prefix with --recursive (`s3://BUCKET` is
    /// the whole bucket).
    #[arg(value_parser = parse_s3_prefix)]
    pub uri: S3Uri,

    /// Every object under the prefix S3URI.
    #[arg(short, long)]
    pub recursive: bool,

    /// Objects at once with --recursive (each command says which work).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub select: SelectArgs,
}

/// Which objects a `--recursive` run takes: those of a manifest, and one
/// shard of N (the work is `atrest_transfer::manifest`).
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// With --recursive, the objects of this manifest instead of a listing
    /// of the prefix: an S3 Batch Operations CSV (rows bucket,key or
    /// bucket,key,versionId; keys URL-encoded) or an S3 Inventory report's manifest.json (CSV or
    /// CSV.gz files). Only rows under S3URI are taken. A local file or
    /// s3://BUCKET/KEY.
    #[arg(long, value_name = "FILE|S3URI", value_parser = ManifestSource::parse, requires = "recursive")]
    pub manifest: Option<ManifestSource>,

    /// With --recursive, only the objects of shard I of N (0 <= I < N), by
    /// a stable hash of bucket and key: N workers given 0/N to N-1/N cover
    /// every object exactly once.
    #[arg(long, value_name = "I/N", requires = "recursive")]
    pub shard: Option<Shard>,
}

impl SelectArgs {
    /// Every object, listed: what `sync` takes.
    pub const ALL: SelectArgs = SelectArgs {
        manifest: None,
        shard: None,
    };

    /// The shard to take (all objects without --shard).
    pub fn shard(&self) -> Shard {
        self.shard.unwrap_or(Shard::ALL)
    }
}

impl Command {
    /// Fails on a `--context` or `--expect-context` key given twice: a
    /// context holds each key once (the last value would win, or nothing
    /// could ever match both).
    pub fn check_pairs(&self) -> Result<(), String> {
        type Context = [(String, String)];
        let (context, expected): (&Context, &Context) = match self {
            Command::Cp(CpArgs {
                encrypt, decrypt, ..
            })
            | Command::Mv(CpArgs {
                encrypt, decrypt, ..
            })
            | Command::Sync {
                encrypt, decrypt, ..
            } => (&encrypt.context, &decrypt.expect_context),
            Command::EncryptWithKms { encrypt, .. } => (&encrypt.context, &[]),
            Command::DecryptWithKms { decrypt, .. } => (&[], &decrypt.expect_context),
            Command::Rewrap { context, .. } => (context, &[]),
            _ => (&[], &[]),
        };
        for (flag, pairs) in [("--context", context), ("--expect-context", expected)] {
            let mut keys = std::collections::HashSet::new();
            if let Some((key, _)) = pairs.iter().find(|(k, _)| !keys.insert(k)) {
                return Err(format!("{flag} gives `{key}` twice"));
            }
        }
        Ok(())
    }

    /// The flags of many files, for the commands that take them.
    /// `--source-region`: the S3 source's bucket and the region given for
    /// it, or why it names nothing (a local source).
    pub fn source_region(&self) -> Result<Option<(&str, &str)>, String> {
        let (source, from_s3) = match self {
            Command::Cp(CpArgs { src, bulk, .. }) | Command::Mv(CpArgs { src, bulk, .. }) => {
                (src, &bulk.from_s3)
            }
            Command::EncryptWithKms { uri, bulk, .. }
            | Command::DecryptWithKms { uri, bulk, .. } => (uri, &bulk.from_s3),
            Command::Sync { src, sync, .. } => (src, &sync.from_s3),
            _ => return Ok(None),
        };
        let Some(region) = &from_s3.source_region else {
            return Ok(None);
        };
        // An upload's `uri` is its destination.
        match (self, source) {
            (Command::EncryptWithKms { .. }, _) | (_, Target::File(_)) => {
                Err("--source-region names the region of an S3 source: this one is local".into())
            }
            (_, Target::S3(uri)) => Ok(Some((uri.bucket(), region.as_str()))),
        }
    }

    pub fn many_mut(&mut self) -> Option<&mut ManyArgs> {
        match self {
            Command::Cp(CpArgs { bulk, .. })
            | Command::Mv(CpArgs { bulk, .. })
            | Command::EncryptWithKms { bulk, .. }
            | Command::DecryptWithKms { bulk, .. } => Some(&mut bulk.many),
            Command::Sync { many, .. } => Some(many),
            _ => None,
        }
    }
}

impl ManyArgs {
    /// Fills [`ManyArgs::filters`] from the subcommand's `matches`: clap
    /// keeps --include and --exclude apart, and their order decides.
    pub fn order_filters(&mut self, matches: &clap::ArgMatches) {
        self.filters.order(matches);
    }

    /// What a walk of the local tree takes: the filters, and links unless
    /// --no-follow-symlinks.
    pub fn filter(&self) -> Result<atrest_fs::tree::Filter, atrest_fs::Error> {
        let filter = atrest_fs::tree::Filter::new(&self.filters.rules)?;
        Ok(match self.no_follow_symlinks {
            true => filter.without_links(),
            false => filter,
        })
    }

    pub fn cache_limits(&self) -> atrest_kms::CacheLimits {
        atrest_kms::CacheLimits {
            max_objects: self.key_cache_max_objects,
            max_age: std::time::Duration::from_secs(self.key_cache_max_age),
        }
    }
}

impl Filters {
    /// Fills [`Filters::rules`] from the subcommand's `matches`: clap
    /// keeps --include and --exclude apart, and their order decides.
    pub fn order(&mut self, matches: &clap::ArgMatches) {
        self.rules = ordered_filters(matches);
    }
}

fn ordered_filters(matches: &clap::ArgMatches) -> Vec<atrest_fs::tree::Rule> {
    let given = |id: &str| -> Vec<(usize, String)> {
        let values = matches.get_many::<String>(id).into_iter().flatten();
        let indices = matches.indices_of(id).into_iter().flatten();
        indices.zip(values.cloned()).collect()
    };
    let mut rules: Vec<(usize, atrest_fs::tree::Rule)> = given("include")
        .into_iter()
        .map(|(at, p)| (at, atrest_fs::tree::Rule::Include(p)))
        .chain(
            given("exclude")
                .into_iter()
                .map(|(at, p)| (at, atrest_fs::tree::Rule::Exclude(p))),
        )
        .collect();
    rules.sort_by_key(|(at, _)| *at);
    rules.into_iter().map(|(_, rule)| rule).collect()
}

/// What `sync` decides with.
#[derive(Debug, Args)]
#[command(next_help_heading = "Sync")]
pub struct SyncArgs {
    /// Also delete what the destination has and the source lacks (files,
    /// or objects), within the filters.
    #[arg(long)]
    pub delete: bool,

    /// Print what would be transferred or deleted, and do nothing.
    #[arg(long)]
    pub dryrun: bool,

    /// Compare sizes only, not modification times.
    #[arg(long, conflicts_with = "exact_timestamps")]
    pub size_only: bool,

    /// Transfer same-sized files whose times differ at all (downloads:
    /// also replace local files newer than the object).
    #[arg(long)]
    pub exact_timestamps: bool,

    /// Never replace anything the destination has.
    #[arg(long)]
    pub no_overwrite: bool,

    #[command(flatten)]
    pub from_s3: FromS3Args,
}

/// Parses a byte count: a bare number of bytes, or one with a unit (K, M,
/// G, T, with or without `iB`).
/// A byte count no larger than S3's largest object (5 TiB).
fn parse_object_size(s: &str) -> Result<u64, String> {
    const MAX_OBJECT: u64 = 5 << 40;
    match parse_bytes(s)? {
        len if len > MAX_OBJECT => Err(format!("`{s}` is more than S3's largest object (5 TiB)")),
        len => Ok(len),
    }
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let scale: u64 = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" if !unit.starts_with('i') => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        "T" | "t" => 1 << 40,
        _ => {
            return Err(format!(
                "`{s}`: expected a byte count like 107374182400 or 100G"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{s}`: expected a byte count like 107374182400 or 100G"))
}

/// Parses a size: a bare number in MiB (the flags' historical unit), or a
/// number with a unit (K, M, G, with or without `iB`; B for bytes).
fn parse_size_mib(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}`: expected a size like 8M, 8MiB or 1G");
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "M"),
    };
    let scale: u64 = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return Err(bad()),
    };
    if unit == "iB" {
        return Err(bad());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)
}

/// A part size or threshold: 5 MiB to 5 GiB, as S3 allows for parts.
fn parse_part_size(s: &str) -> Result<u64, String> {
    let size = parse_size_mib(s)?;
    if !(5 << 20..=5 << 30).contains(&size) {
        return Err(format!("`{s}`: must be from 5M to 5G"));
    }
    Ok(size)
}

/// Key-value pairs given in one flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pairs(pub Vec<(String, String)>);

/// `K=V` or `K1=V1,K2=V2` (the AWS CLI's shorthand for a map).
fn parse_pairs(s: &str) -> Result<Pairs, String> {
    s.split(',')
        .map(parse_pair)
        .collect::<Result<_, _>>()
        .map(Pairs)
}

fn parse_tagging(s: &str) -> Result<Pairs, String> {
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8()
            .map(|p| p.into_owned())
            .map_err(|_| format!("`{s}`: not URL-encoded UTF-8"))
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k.is_empty() {
                return Err(format!("`{s}` is not KEY=VALUE&KEY=VALUE"));
            }
            Ok((decode(k)?, decode(v)?))
        })
        .collect::<Result<_, _>>()
        .map(Pairs)
}

/// One of `values` (the SDK's list of what S3 knows), by its exact name.
fn known<T: From<&'static str>>(s: &str, what: &str, values: &[&'static str]) -> Result<T, String> {
    match values.iter().find(|v| **v == s) {
        Some(v) => Ok(T::from(v)),
        None => Err(format!(
            "`{s}` is not a {what}: expected one of {}",
            values.join(", ")
        )),
    }
}

fn parse_storage_class(s: &str) -> Result<aws_sdk_s3::types::StorageClass, String> {
    use aws_sdk_s3::types::StorageClass;
    known(s, "storage class", StorageClass::values())
}

fn parse_sse(s: &str) -> Result<aws_sdk_s3::types::ServerSideEncryption, String> {
    known(s, "server-side encryption", &["AES256", "aws:kms"])
}

fn parse_expires(s: &str) -> Result<aws_sdk_s3::primitives::DateTime, String> {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    let rfc3339 = |s: &str| {
        let at = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ())?;
        Ok::<_, ()>(DateTime::from_secs_and_nanos(
            at.unix_timestamp(),
            at.nanosecond(),
        ))
    };
    DateTime::from_str(s, DateTimeFormat::DateTime)
        .or_else(|_| rfc3339(s))
        .or_else(|_| DateTime::from_str(s, DateTimeFormat::HttpDate))
        .map_err(|_| {
            "not a time: give RFC 3339 (2027-01-31T12:00:00Z) or an HTTP date (Sun, 31 Jan 2027 12:00:00 GMT)".into()
        })
}

fn parse_acl(s: &str) -> Result<aws_sdk_s3::types::ObjectCannedAcl, String> {
    use aws_sdk_s3::types::ObjectCannedAcl;
    known(s, "canned ACL", ObjectCannedAcl::values())
}

fn parse_s3_prefix(s: &str) -> Result<S3Uri, String> {
    S3Uri::parse_prefix(s).map_err(|e| e.to_string())
}

/// One side of a command: an S3 object (or prefix), or a local path.
#[derive(Clone, Debug)]
pub enum Target {
    S3(S3Uri),
    File(std::path::PathBuf),
}

/// Whether `s` begins as an S3 location does (`s3:/b/k`, a slash short, is
/// a mistyped URI, not a local file `s3:` to create).
fn names_s3(s: &str) -> bool {
    s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("s3:"))
}

/// A local file argument: one that names S3 is refused, not made into a
/// directory `s3:` (`decrypt IN s3://b/k` wrote the plaintext there).
fn local_path(s: std::ffi::OsString) -> Result<PathBuf, String> {
    if s.to_str().is_none() && names_s3(&s.to_string_lossy()) {
        return Err(format!(
            "`{}` names S3, but this side is a local file (and an S3 key must be valid UTF-8)",
            crate::escape(&s.to_string_lossy())
        ));
    }
    match s.to_str().filter(|s| names_s3(s)) {
        Some(s) => Err(format!(
            "`{}` names S3, but this side is a local file (for a local file of that name, give ./{0})",
            crate::escape(s)
        )),
        None => Ok(s.into()),
    }
}

impl Target {
    /// `s3://BUCKET/KEY` (any `SCHEME://` is taken as a URI), or a path.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::parse_with(s, S3Uri::parse)
    }

    /// As [`Target::parse`], but `s3://BUCKET` and `s3://BUCKET/` are
    /// accepted too (the whole bucket, as a prefix).
    pub fn parse_prefix(s: &str) -> Result<Self, String> {
        Self::parse_with(s, S3Uri::parse_prefix)
    }

    fn parse_with(
        s: &str,
        parse: fn(&str) -> Result<S3Uri, atrest_s3::S3UriError>,
    ) -> Result<Self, String> {
        // Another scheme (`http://...`) is a mistaken URI, not a file name.
        let scheme = s.split_once("://").map(|(scheme, _)| scheme);
        let is_uri = scheme.is_some_and(|sc| {
            sc.starts_with(|c: char| c.is_ascii_alphabetic())
                && sc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }) || names_s3(s);
        if is_uri {
            parse(s).map(Target::S3).map_err(|e| e.to_string())
        } else {
            Ok(Target::File(s.into()))
        }
    }

    /// The target as messages name it (escaped).
    pub fn name(&self) -> String {
        match self {
            Target::S3(uri) => crate::escape(&uri.to_string()),
            Target::File(path) => crate::escape(&path.display().to_string()),
        }
    }
}

/// A [`Target`] from the command line: as its `&str` parser says, and a
/// path that is not UTF-8 (which no s3:// URI is) as a local file; clap's
/// `&str` parsers would refuse such a path outright.
#[derive(Clone, Copy)]
pub struct Side(pub fn(&str) -> Result<Target, String>);

impl clap::builder::TypedValueParser for Side {
    type Value = Target;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Target, clap::Error> {
        match value.to_str() {
            None if names_s3(&value.to_string_lossy()) => Err(not_utf8_uri(cmd, arg, value)),
            None => Ok(Target::File(value.into())),
            Some(_) => self.0.parse_ref(cmd, arg, value),
        }
    }
}

/// An argument that names S3 but is not UTF-8: no S3 key can hold it
/// (before, it was taken for a local path `s3:/b/...`, written there).
fn not_utf8_uri(
    cmd: &clap::Command,
    arg: Option<&clap::Arg>,
    value: &std::ffi::OsStr,
) -> clap::Error {
    let shown = crate::escape(&value.to_string_lossy());
    let arg = arg.map_or_else(String::new, |a| format!(" for '{a}'"));
    let why = format!("invalid value '{shown}'{arg}: an S3 key must be valid UTF-8");
    clap::Error::raw(clap::error::ErrorKind::ValueValidation, why).with_cmd(cmd)
}

#[cfg(test)]
mod tests {
    /// RFC 3339 with an offset or in lower case was refused ("not a time").
    #[test]
    fn expires_takes_every_rfc_3339_form_and_http_dates() {
        let at = |s: &str| super::parse_expires(s).map(|t| t.secs());
        let noon = at("2027-01-31T12:00:00Z").unwrap();
        assert_eq!(at("2027-01-31T14:00:00+02:00"), Ok(noon));
        assert_eq!(at("2027-01-31t12:00:00z"), Ok(noon));
        assert_eq!(at("Sun, 31 Jan 2027 12:00:00 GMT"), Ok(noon));
        assert!(at("tomorrow").is_err());
    }
}
