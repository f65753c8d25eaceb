//! The upload handle against the local endpoint: aborting a running upload
//! leaves no multipart upload behind, and progress counts only what S3
//! acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atrest_transfer::{DataKeyFrom, Observer, S3Uri, Transfer, UploadHandle};
use tokio::io::AsyncWriteExt;

mod local;

const MIB: usize = 1024 * 1024;

struct World {
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    transfer: Transfer,
    bucket: String,
    key_id: String,
}

async fn world(name: &str) -> Option<World> {
    let (s3, kms, bucket) = local::clients(name).await?;
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let keys = Arc::new(atrest_kms::CachedKeys::uncached(atrest_kms::Kms::new(
        kms.clone(),
    )));
    Some(World {
        kms,
        transfer: Transfer::new(s3.clone(), keys),
        s3,
        bucket,
        key_id,
    })
}

impl World {
    /// A shared data key, wrapped (as `create-data-key` stores it).
    async fn wrapped_data_key(&self) -> Arc<[u8]> {
        let out = self
            .kms
            .generate_data_key_without_plaintext()
            .key_id(&self.key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .send()
            .await
            .unwrap();
        out.ciphertext_blob().unwrap().as_ref().into()
    }

    /// An upload to `key` whose input is never finished (7 MiB, then
    /// nothing more), once its multipart upload has begun; and its feed.
    async fn stalled_upload(&self, key: &str) -> (UploadHandle, tokio::io::DuplexStream) {
        let uri = S3Uri::parse(&format!("s3://{}/{key}", self.bucket)).unwrap();
        let (mut feed, input) = tokio::io::duplex(MIB);
        let data_key = DataKeyFrom::Generate(self.key_id.clone());
        let upload = self.transfer.upload(&uri, data_key).part_size(5 * MIB);
        let handle = upload.start(input);
        feed.write_all(&vec![7; 7 * MIB]).await.unwrap();
        self.wait_for_uploads(|n| n > 0, "no multipart upload started")
            .await;
        (handle, feed)
    }

    /// Waits (up to 30 s) until the count of multipart uploads is `wanted`.
    async fn wait_for_uploads(&self, wanted: impl Fn(usize) -> bool, failure: &str) {
        let mut waited = 0;
        while !wanted(self.multipart_uploads().await) {
            assert!(waited < 300, "{failure}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
    }

    async fn multipart_uploads(&self) -> usize {
        let out = self
            .s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await;
        out.unwrap().uploads().len()
    }
}

/// Every `done` the upload reported.
#[derive(Default)]
struct Recorded {
    total: AtomicU64,
    done: Mutex<Vec<u64>>,
}

impl Observer for Recorded {
    fn total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::SeqCst);
    }
    fn done(&self, bytes: u64) {
        self.done.lock().unwrap().push(bytes);
    }
}

#[tokio::test]
async fn abort_stops_a_running_upload_and_leaves_no_parts() {
    let Some(w) = world("abort").await else {
        return;
    };
    let (handle, _feed) = w.stalled_upload("aborted").await;
    handle.abort().await;
    assert_eq!(w.multipart_uploads().await, 0, "parts left behind");
    let head =
        w.s3.head_object()
            .bucket(&w.bucket)
            .key("aborted")
            .send()
            .await;
    assert!(head.is_err(), "an object was created");
}

/// Dropping the handle aborts the upload, as its docs say (they said it
/// went on unobserved, while it was aborted without a word). A handle
/// joined to its end keeps the outcome: joined again it returns the same
/// upload (it said "aborted"), and abort says the object is written.
#[tokio::test]
async fn a_dropped_handle_aborts_and_a_joined_one_keeps_its_outcome() {
    let Some(w) = world("dropped").await else {
        return;
    };
    let uri = S3Uri::parse(&format!("s3://{}/dropped", w.bucket)).unwrap();
    let (handle, feed) = w.stalled_upload("dropped").await;
    drop(handle);
    drop(feed);
    w.wait_for_uploads(|n| n == 0, "the dropped upload's parts remain")
        .await;
    let head = w.s3.head_object().bucket(&w.bucket).key("dropped");
    assert!(
        head.send().await.is_err(),
        "a dropped upload wrote its object"
    );

    let key = DataKeyFrom::Generate(w.key_id.clone());
    let mut handle = w
        .transfer
        .upload(&uri, key)
        .start(std::io::Cursor::new(vec![1; 1000]));
    let first = handle.join().await.unwrap();
    let again = handle.join().await.unwrap();
    assert_eq!(
        (again.plaintext_len, again.object_len),
        (first.plaintext_len, first.object_len)
    );
    assert_eq!(handle.abort().await, atrest_s3::Abandoned::Completed);

    // Joined after its failure: the failure, not "aborted".
    let key = DataKeyFrom::Generate(w.key_id.clone());
    let mut handle = w
        .transfer
        .upload(&uri, key)
        .input_len(5)
        .start(std::io::Cursor::new(vec![1; 1000]));
    assert!(matches!(
        handle.join().await,
        Err(atrest_transfer::Error::InputChanged)
    ));
    let again = handle.join().await;
    assert!(
        matches!(again, Err(atrest_transfer::Error::JoinedAfterFailure)),
        "{again:?}"
    );
    assert_eq!(handle.abort().await, atrest_s3::Abandoned::Aborted);
}

#[tokio::test]
async fn progress_counts_parts_s3_acknowledged_not_bytes_read() {
    let Some(w) = world("acked").await else {
        return;
    };
    let uri = S3Uri::parse(&format!("s3://{}/acked", w.bucket)).unwrap();
    let recorded = Arc::new(Recorded::default());
    let len = 12 * MIB + 3;
    let (mut feed, input) = tokio::io::duplex(MIB);
    let key = DataKeyFrom::Generate(w.key_id.clone());
    let mut handle = w
        .transfer
        .upload(&uri, key)
        .part_size(5 * MIB)
        .input_len(len as u64)
        .observer(recorded.clone())
        .start(input);
    // Read but not yet sealed into a whole part: nothing is done.
    feed.write_all(&vec![1; 4 * MIB]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        recorded.done.lock().unwrap().is_empty(),
        "bytes read counted"
    );
    feed.write_all(&vec![1; len - 4 * MIB]).await.unwrap();
    drop(feed);
    handle.join().await.unwrap();
    let done = recorded.done.lock().unwrap().clone();
    let object =
        w.s3.head_object()
            .bucket(&w.bucket)
            .key("acked")
            .send()
            .await
            .unwrap();
    let object_len = object.content_length().unwrap() as u64;
    // One report a part, summing to the object, its total from the start.
    assert_eq!(done.len(), 3, "{done:?}");
    assert_eq!(done.iter().sum::<u64>(), object_len);
    assert_eq!(recorded.total.load(Ordering::SeqCst), object_len);
}

/// A declared length is a promise about the input: a file that shrinks or
/// grows while it is read fails the upload (nothing is created, no parts
/// remain) instead of becoming a whole-looking object of other bytes. Each
/// format, in parts and in one streaming PutObject.
#[tokio::test]
async fn an_input_of_another_length_than_declared_fails_and_creates_nothing() {
    use atrest_transfer::{Error, Format};
    let Some(w) = world("changed").await else {
        return;
    };
    let declared = 12 * MIB;
    let cases = [
        (Format::V2, declared - MIB, 0),
        (Format::V2, declared + 1, 0),
        (Format::V1, declared / 2, 0),
        (Format::V1, declared + MIB, 0),
        (Format::S3ecV3, declared - 1, 0),
        (Format::V2, declared - 7, u64::MAX),
        (Format::V2, declared + 7, u64::MAX),
    ];
    let shared = w.wrapped_data_key().await;
    for (i, (format, actual, threshold)) in cases.into_iter().enumerate() {
        let key = format!("changed-{i}");
        let uri = S3Uri::parse(&format!("s3://{}/{key}", w.bucket)).unwrap();
        let data_key = match format {
            Format::V1 => DataKeyFrom::Wrapped(shared.clone()),
            _ => DataKeyFrom::Generate(w.key_id.clone()),
        };
        let result = w
            .transfer
            .upload(&uri, data_key)
            .format(format)
            .part_size(5 * MIB)
            .multipart_threshold(threshold)
            .input_len(declared as u64)
            .start(std::io::Cursor::new(vec![3u8; actual]))
            .join()
            .await;
        assert!(
            matches!(result, Err(Error::InputChanged)),
            "{format:?}, {actual} bytes for {declared}: {result:?}"
        );
        let head = w.s3.head_object().bucket(&w.bucket).key(&key).send().await;
        assert!(head.is_err(), "{format:?}, {actual}: an object was created");
    }
    assert_eq!(w.multipart_uploads().await, 0, "parts left behind");
    // The same length as declared goes up.
    let uri = S3Uri::parse(&format!("s3://{}/same", w.bucket)).unwrap();
    let done = w
        .transfer
        .upload(&uri, DataKeyFrom::Generate(w.key_id.clone()))
        .part_size(5 * MIB)
        .input_len(declared as u64)
        .start(std::io::Cursor::new(vec![3u8; declared]))
        .join()
        .await
        .unwrap();
    assert_eq!(done.plaintext_len, declared as u64);

    // The same length, but the input says it changed: in parts and in one
    // (buffered) PutObject, nothing is created; asked once it is all read.
    for (i, len) in [declared, MIB].into_iter().enumerate() {
        let key = format!("rewritten-{i}");
        let uri = S3Uri::parse(&format!("s3://{}/{key}", w.bucket)).unwrap();
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&asked);
        let result = w
            .transfer
            .upload(&uri, DataKeyFrom::Generate(w.key_id.clone()))
            .part_size(5 * MIB)
            .input_len(len as u64)
            .unchanged_input(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                false
            })
            .start(std::io::Cursor::new(vec![4u8; len]))
            .join()
            .await;
        assert!(
            matches!(result, Err(Error::InputChanged)),
            "{len}: {result:?}"
        );
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 1);
        let head = w.s3.head_object().bucket(&w.bucket).key(&key).send().await;
        assert!(head.is_err(), "{len}: an object was created");
    }
    assert_eq!(w.multipart_uploads().await, 0, "parts left behind");
}

/// A v1 header records no encryption context, and a fresh data key is
/// bound to one: a v1 upload with a fresh key (or a context) was written
/// and could never be read. It is refused before KMS or S3; v1 with the
/// shared data key reads back.
#[tokio::test]
async fn v1_takes_the_shared_data_key_and_no_context() {
    use atrest_transfer::{Error, Format};
    let Some(w) = world("v1").await else {
        return;
    };
    let uri = S3Uri::parse(&format!("s3://{}/v1", w.bucket)).unwrap();
    let shared = w.wrapped_data_key().await;
    let context = [("app".to_owned(), "x".to_owned())];
    for (key, context) in [
        (DataKeyFrom::Generate(w.key_id.clone()), &[][..]),
        (DataKeyFrom::Wrapped(shared.clone()), &context[..]),
    ] {
        let result = w
            .transfer
            .upload(&uri, key)
            .format(Format::V1)
            .context(context)
            .start(std::io::Cursor::new(vec![1; 1000]))
            .join()
            .await;
        assert!(matches!(result, Err(Error::Unsupported(_))), "{result:?}");
        let head = w.s3.head_object().bucket(&w.bucket).key("v1");
        assert!(head.send().await.is_err(), "an object was created");
    }
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    w.transfer
        .upload(&uri, DataKeyFrom::Wrapped(shared))
        .format(Format::V1)
        .start(std::io::Cursor::new(data.clone()))
        .join()
        .await
        .unwrap();
    let mut read = Vec::new();
    w.transfer
        .download(&uri)
        .into_writer(&mut read)
        .await
        .unwrap();
    assert!(read == data, "v1 did not read back");
}

/// Options at their extremes are taken as the nearest S3 allows: a part of
/// `usize::MAX` bytes panicked ("capacity overflow"), 64 GiB aborted the
/// process, `concurrency(usize::MAX)` overflowed (debug builds) and, for an
/// S3 Encryption Client object, spawned tasks without end. A download into a
/// file that is not empty is refused (the old bytes past the object stayed).
#[tokio::test]
async fn options_at_their_extremes_round_trip() {
    use atrest_transfer::{Error, Format};
    let Some(w) = world("extremes").await else {
        return;
    };
    let shared = w.wrapped_data_key().await;
    let data: Vec<u8> = (0..(6 * MIB as u32)).map(|i| (i % 253) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    for (i, format) in [Format::V1, Format::V2, Format::S3ecV3]
        .into_iter()
        .enumerate()
    {
        let uri = S3Uri::parse(&format!("s3://{}/extreme-{i}", w.bucket)).unwrap();
        let key = match format {
            Format::V1 => DataKeyFrom::Wrapped(shared.clone()),
            _ => DataKeyFrom::Generate(w.key_id.clone()),
        };
        for part_size in [usize::MAX, 64 << 30] {
            w.transfer
                .upload(&uri, key.clone())
                .format(format)
                .part_size(part_size)
                .concurrency(usize::MAX)
                .input_len(data.len() as u64)
                .start(std::io::Cursor::new(data.clone()))
                .join()
                .await
                .unwrap_or_else(|e| panic!("{format:?}, {part_size}: {e}"));
        }
        let download = w
            .transfer
            .download(&uri)
            .concurrency(usize::MAX)
            .part_size(1);
        let read = tokio::time::timeout(Duration::from_secs(60), async {
            let mut read = Vec::new();
            download.into_writer(&mut read).await.map(|_| read)
        });
        let read = read
            .await
            .unwrap_or_else(|_| panic!("{format:?}: hung"))
            .unwrap();
        assert!(read == data, "{format:?}: into a writer");
        let path = dir.path().join(format!("{i}"));
        let file = std::fs::File::create(&path).unwrap();
        let download = w
            .transfer
            .download(&uri)
            .concurrency(usize::MAX)
            .part_size(1);
        let done = tokio::time::timeout(Duration::from_secs(60), download.into_file(file));
        done.await
            .unwrap_or_else(|_| panic!("{format:?}: hung into a file"))
            .unwrap();
        assert!(
            std::fs::read(&path).unwrap() == data,
            "{format:?}: into a file"
        );
        // Now not empty: refused, the file as it was.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let again = w.transfer.download(&uri).into_file(file).await;
        assert!(matches!(again, Err(Error::Unsupported(_))), "{again:?}");
        assert!(std::fs::read(&path).unwrap() == data);
    }
}
