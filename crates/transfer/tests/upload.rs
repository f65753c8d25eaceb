//! The upload handle against the local endpoint: aborting a running upload
//! leaves no multipart upload behind, and progress counts only what S3
//! acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atrest_transfer::{DataKeyFrom, Observer, S3Uri, Transfer};
use tokio::io::AsyncWriteExt;

mod local;

const MIB: usize = 1024 * 1024;

struct World {
    s3: aws_sdk_s3::Client,
    transfer: Transfer,
    bucket: String,
    key_id: String,
}

async fn world(name: &str) -> Option<World> {
    let (s3, kms, bucket) = local::clients(name).await?;
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let keys = Arc::new(atrest_kms::CachedKeys::uncached(atrest_kms::Kms::new(kms)));
    Some(World {
        transfer: Transfer::new(s3.clone(), keys),
        s3,
        bucket,
        key_id,
    })
}

impl World {
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
    let uri = S3Uri::parse(&format!("s3://{}/aborted", w.bucket)).unwrap();
    // An input that is never finished: 7 MiB, then nothing more.
    let (mut feed, input) = tokio::io::duplex(MIB);
    let key = DataKeyFrom::Generate(w.key_id.clone());
    let handle = w.transfer.upload(&uri, key).part_size(5 * MIB).start(input);
    feed.write_all(&vec![7; 7 * MIB]).await.unwrap();
    let mut waited = 0;
    while w.multipart_uploads().await == 0 {
        assert!(waited < 300, "no multipart upload started");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
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
    for (i, (format, actual, threshold)) in cases.into_iter().enumerate() {
        let key = format!("changed-{i}");
        let uri = S3Uri::parse(&format!("s3://{}/{key}", w.bucket)).unwrap();
        let result = w
            .transfer
            .upload(&uri, DataKeyFrom::Generate(w.key_id.clone()))
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
}
