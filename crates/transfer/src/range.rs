//! The plaintext range of a download, as an HTTP `Range` names one: a span
//! from a first byte, or the last N bytes (a suffix), which only the
//! object's plaintext length turns into bytes.

use std::fmt;

use atrest_s3::ByteRange;

use crate::Error;

/// Which plaintext bytes a download asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainRange {
    /// `START-END` (inclusive) or `START-` (to the end).
    Span(ByteRange),
    /// `-N`: the last N bytes (all of them if there are fewer).
    Last(u64),
}

impl PlainRange {
    /// The bytes of a plaintext of `plaintext_len` bytes this range names,
    /// the end clipped to the plaintext (as HTTP clips it); a range with no
    /// byte inside is [`Error::RangeOutside`].
    pub fn within(self, plaintext_len: u64) -> Result<ByteRange, Error> {
        let outside = Err(Error::RangeOutside {
            range: self,
            plaintext_len,
        });
        let Some(last) = plaintext_len.checked_sub(1) else {
            return outside;
        };
        match self {
            PlainRange::Span(span) => {
                let end = span.end.unwrap_or(u64::MAX).min(last);
                match span.start <= end {
                    true => Ok(ByteRange::new(span.start, end)),
                    false => outside,
                }
            }
            PlainRange::Last(0) => outside,
            PlainRange::Last(n) => Ok(ByteRange::new(plaintext_len.saturating_sub(n), last)),
        }
    }
}

impl From<ByteRange> for PlainRange {
    fn from(span: ByteRange) -> Self {
        PlainRange::Span(span)
    }
}

impl fmt::Display for PlainRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlainRange::Span(span) => span.fmt(f),
            PlainRange::Last(n) => write!(f, "-{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn suffixes_and_spans_resolve_as_http_does() {
        let last = |n| PlainRange::Last(n).within(10).map_err(|e| e.to_string());
        assert_eq!(last(3), Ok(ByteRange::new(7, 9)));
        assert_eq!(last(10), Ok(ByteRange::new(0, 9)));
        assert_eq!(last(99), Ok(ByteRange::new(0, 9)));
        assert!(last(0).unwrap_err().contains("-0 is outside"));
        let open = PlainRange::from(ByteRange::from(4));
        assert_eq!(open.within(10).ok(), Some(ByteRange::new(4, 9)));
        assert!(open.within(4).is_err());
        assert!(PlainRange::Last(1).within(0).is_err());
        assert_eq!(PlainRange::Last(5).to_string(), "-5");
    }

    proptest! {
        /// A resolved range lies inside the plaintext; a suffix ends at
        /// its last byte and holds min(N, len) bytes.
        #[test]
        fn a_resolved_range_is_inside_the_plaintext(len in 0u64..1000, a in 0u64..1100, b in 0u64..1100) {
            for range in [PlainRange::Last(a), ByteRange::new(a.min(b), a.max(b)).into(), ByteRange::from(a).into()] {
                if let Ok(r) = range.within(len) {
                    let end = r.end.unwrap();
                    prop_assert!(r.start <= end && end < len);
                    if let PlainRange::Last(n) = range {
                        prop_assert_eq!(end, len - 1);
                        prop_assert_eq!(end - r.start + 1, n.min(len));
                    }
                } else {
                    let inside = match range {
                        PlainRange::Last(n) => n > 0 && len > 0,
                        PlainRange::Span(s) => s.start < len,
                    };
                    prop_assert!(!inside, "{range} of {len} refused");
                }
            }
        }
    }
}
