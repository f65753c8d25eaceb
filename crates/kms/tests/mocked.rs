//! The adapter against a mocked KMS client: error classification for answers
//! the local emulator cannot produce, and one call per operation.

use atrest_kms::{Kms, KmsError};
use aws_sdk_kms::error::ErrorMetadata;
use aws_sdk_kms::operation::decrypt::{DecryptError, DecryptOutput};
use aws_sdk_kms::operation::generate_data_key::{GenerateDataKeyError, GenerateDataKeyOutput};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::error::{DisabledException, InvalidCiphertextException, NotFoundException};
use aws_sdk_kms::Client;
use aws_smithy_mocks::{mock, mock_client};

#[tokio::test]
async fn disabled_key_is_classified() {
    let rule = mock!(Client::generate_data_key).then_error(|| {
        GenerateDataKeyError::DisabledException(
            DisabledException::builder()
                .message("key is disabled")
                .build(),
        )
    });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&rule]));
    let err = kms.generate_data_key("k", &[]).await.unwrap_err();
    assert!(matches!(err, KmsError::KeyDisabled(_)), "{err:?}");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn not_found_and_access_denied_are_classified() {
    let not_found = mock!(Client::generate_data_key).then_error(|| {
        GenerateDataKeyError::NotFoundException(
            NotFoundException::builder().message("no key").build(),
        )
    });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&not_found]));
    assert!(matches!(
        kms.generate_data_key("k", &[]).await.unwrap_err(),
        KmsError::KeyNotFound(_)
    ));

    // AccessDeniedException is not a modelled KMS error: it arrives generic.
    let denied = mock!(Client::decrypt).then_error(|| {
        DecryptError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("nope")
                .build(),
        )
    });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&denied]));
    let err = kms.decrypt(b"blob", &[]).await.unwrap_err();
    assert!(matches!(err, KmsError::DecryptDenied(_)), "{err:?}");
    assert!(err.to_string().ends_with(": nope"), "{err}");
}

#[tokio::test]
async fn invalid_ciphertext_is_classified() {
    let rule = mock!(Client::decrypt).then_error(|| {
        DecryptError::InvalidCiphertextException(InvalidCiphertextException::builder().build())
    });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&rule]));
    assert!(matches!(
        kms.decrypt(b"blob", &[]).await.unwrap_err(),
        KmsError::InvalidCiphertext
    ));
}

#[tokio::test]
async fn malformed_plaintext_is_rejected_and_context_is_sent() {
    let short = mock!(Client::decrypt)
        .match_requests(|req| {
            req.encryption_context()
                .is_some_and(|c| c.get("purpose").map(String::as_str) == Some("test"))
        })
        .then_output(|| {
            DecryptOutput::builder()
                .plaintext(Blob::new(vec![1; 16]))
                .build()
        });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&short]));
    let context = [("purpose".to_owned(), "test".to_owned())];
    assert!(matches!(
        kms.decrypt(b"blob", &context).await.unwrap_err(),
        KmsError::NotAtrestKey(16)
    ));
    assert_eq!(short.num_calls(), 1);
}

#[tokio::test]
async fn generated_key_round_trips_through_the_adapter() {
    let rule = mock!(Client::generate_data_key)
        .match_requests(|req| req.key_spec() == Some(&aws_sdk_kms::types::DataKeySpec::Aes256))
        .then_output(|| {
            GenerateDataKeyOutput::builder()
                .plaintext(Blob::new(vec![7; 32]))
                .ciphertext_blob(Blob::new(b"wrapped".to_vec()))
                .build()
        });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&rule]));
    let generated = kms.generate_data_key("alias/k", &[]).await.unwrap();
    assert_eq!(generated.wrapped, b"wrapped");
    assert_eq!(generated.key.expose(), &[7; 32]);
    assert_eq!(rule.num_calls(), 1, "exactly one KMS call");
}

#[tokio::test]
async fn re_encrypt_sends_both_contexts_and_answers_both_key_ids() {
    use aws_sdk_kms::operation::re_encrypt::ReEncryptOutput;
    let rule = mock!(Client::re_encrypt)
        .match_requests(|req| {
            let has = |c: Option<&std::collections::HashMap<String, String>>| {
                c.is_some_and(|c| c.get("app").map(String::as_str) == Some("x"))
            };
            req.ciphertext_blob().map(Blob::as_ref) == Some(&b"old blob"[..])
                && req.destination_key_id() == Some("alias/new")
                && has(req.source_encryption_context())
                && has(req.destination_encryption_context())
        })
        .then_output(|| {
            ReEncryptOutput::builder()
                .ciphertext_blob(Blob::new(&b"new blob"[..]))
                .source_key_id("arn:aws:kms:us-east-1:1:key/old")
                .key_id("arn:aws:kms:us-east-1:1:key/new")
                .build()
        });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&rule]));
    let context = [("app".to_owned(), "x".to_owned())];
    let out = kms
        .re_encrypt(b"old blob", &context, "alias/new", &context)
        .await
        .unwrap();
    assert_eq!(out.wrapped, b"new blob");
    assert_eq!(out.key_id, "arn:aws:kms:us-east-1:1:key/new");
    assert_eq!(
        out.source_key_id.as_deref(),
        Some("arn:aws:kms:us-east-1:1:key/old")
    );
    assert!(!out.is_same_key());
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn re_encrypt_with_no_context_sends_none_and_spots_the_same_key() {
    use aws_sdk_kms::operation::re_encrypt::ReEncryptOutput;
    let rule = mock!(Client::re_encrypt)
        .match_requests(|req| {
            req.source_encryption_context().is_none()
                && req.destination_encryption_context().is_none()
        })
        .then_output(|| {
            ReEncryptOutput::builder()
                .ciphertext_blob(Blob::new(&b"new blob"[..]))
                .source_key_id("arn:k")
                .key_id("arn:k")
                .build()
        });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&rule]));
    let out = kms.re_encrypt(b"blob", &[], "arn:k", &[]).await.unwrap();
    assert!(out.is_same_key());
}

#[tokio::test]
async fn re_encrypt_denied_and_missing_key_id_are_classified() {
    use aws_sdk_kms::operation::re_encrypt::{ReEncryptError, ReEncryptOutput};
    let denied = mock!(Client::re_encrypt).then_error(|| {
        ReEncryptError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("no kms:ReEncryptTo")
                .build(),
        )
    });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&denied]));
    let err = kms.re_encrypt(b"blob", &[], "k", &[]).await.unwrap_err();
    assert!(matches!(err, KmsError::AccessDenied(_)), "{err:?}");

    let no_id = mock!(Client::re_encrypt).then_output(|| {
        ReEncryptOutput::builder()
            .ciphertext_blob(Blob::new(&b"new"[..]))
            .build()
    });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&no_id]));
    let err = kms.re_encrypt(b"blob", &[], "k", &[]).await.unwrap_err();
    assert!(matches!(err, KmsError::MalformedResponse), "{err:?}");
}

#[tokio::test]
async fn decrypt_and_generate_answer_the_wrapping_key() {
    let decrypt = mock!(Client::decrypt).then_output(|| {
        DecryptOutput::builder()
            .plaintext(Blob::new(vec![7; 32]))
            .key_id("arn:aws:kms:eu-west-1:1:key/abc")
            .build()
    });
    let generate = mock!(Client::generate_data_key).then_output(|| {
        GenerateDataKeyOutput::builder()
            .plaintext(Blob::new(vec![7; 32]))
            .ciphertext_blob(Blob::new(&b"wrapped"[..]))
            .key_id("arn:aws:kms:eu-west-1:1:key/abc")
            .build()
    });
    let kms = Kms::new(mock_client!(aws_sdk_kms, [&decrypt, &generate]));
    let got = kms.decrypt(b"blob", &[]).await.unwrap();
    assert_eq!(
        got.key_id.as_deref(),
        Some("arn:aws:kms:eu-west-1:1:key/abc")
    );
    let made = kms.generate_data_key("alias/a", &[]).await.unwrap();
    assert_eq!(
        made.key_id.as_deref(),
        Some("arn:aws:kms:eu-west-1:1:key/abc")
    );
}
