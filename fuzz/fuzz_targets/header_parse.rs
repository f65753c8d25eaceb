//! Any bytes through `parse_header` (both versions): never panics; a
//! complete header re-encodes to exactly the bytes it was parsed from and
//! parses back to itself; "incomplete" never asks for more than the largest
//! header can hold.
#![no_main]

use atrest_format::{parse_header, v2, Header, Parsed, MAX_WRAPPED_KEY_LEN, PREFIX_LEN};
use libfuzzer_sys::fuzz_target;

/// The longest header of any version (v2 with the largest key and context).
const MAX_HEADER_LEN: usize =
    PREFIX_LEN + MAX_WRAPPED_KEY_LEN + v2::TAIL_FIXED_LEN + v2::MAX_CONTEXT_LEN;

fuzz_target!(|data: &[u8]| {
    match parse_header(data) {
        Ok(Parsed::Complete(header)) => {
            let len = header.encoded_len();
            assert!(len <= data.len() && len <= MAX_HEADER_LEN);
            let mut encoded = Vec::new();
            header.encode(&mut encoded);
            assert_eq!(encoded.len(), len, "encoded_len disagrees with encode");
            assert_eq!(&encoded[..], &data[..len], "re-encoding changed the bytes");
            assert_eq!(
                parse_header(&encoded),
                Ok(Parsed::Complete(header.clone())),
                "re-parse differs"
            );
            if let Header::V2(h) = &header {
                // The AAD is the header without the wrapped key, as read.
                let tail = PREFIX_LEN + h.wrapped_key().len();
                assert_eq!(&h.aad()[..4], &data[..4]);
                assert_eq!(&h.aad()[4..], &data[tail..len]);
            }
        }
        Ok(Parsed::Incomplete { needed }) => {
            assert!(needed > 0);
            assert!(
                data.len() + needed <= MAX_HEADER_LEN,
                "asks for {needed} more bytes after {}",
                data.len()
            );
        }
        Err(_) => {}
    }
});
