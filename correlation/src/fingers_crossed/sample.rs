//! Choosing the healthy requests that are kept whole, the same way everywhere: see
//! [`sample_hash`] for the definition every component must share.

use std::borrow::Cow;
use std::sync::Arc;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits, over `bytes`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The stable sampling hash of a key's canonical bytes: `fmix64(fnv1a64(bytes))`.
///
/// Every agent, and the trace pipeline, must keep the *same* requests, so the choice is a
/// pure function of the key's canonical bytes (the request id as written, a trace id as
/// 32 lowercase hex digits) and the configured fraction, defined precisely enough to be
/// reimplemented in a few lines in any language:
///
/// ```text
/// h = 0xcbf29ce484222325                          // FNV-1a 64 offset basis
/// for b in bytes: h = (h XOR b) * 0x100000001b3   // mod 2^64
/// // MurmurHash3 fmix64 finaliser, so keys differing only in their last
/// // characters ("req-41", "req-42") land far apart:
/// h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53; h ^= h >> 33
/// sampled  <=>  h < fraction * 2^64               // 0 keeps none, 1 keeps all
/// ```
///
/// Never change it, or agents and the trace pipeline stop agreeing on which requests are
/// kept.
///
/// ```
/// use hindsight_correlation::fingers_crossed::sample_hash;
///
/// assert_eq!(sample_hash(b"req-42"), 0x8184_74ec_537a_12e3); // pinned forever
/// assert_ne!(sample_hash(b"req-42"), sample_hash(b"req-43"));
/// ```
pub fn sample_hash(bytes: &[u8]) -> u64 {
    fmix64(fnv1a64(bytes))
}

/// The threshold a hash is compared with: `fraction × 2^64`, saturating.
///
/// A `u128` so that a fraction of exactly 1 keeps every key (`u64::MAX < 2^64`).
pub(crate) fn threshold(fraction: f64) -> u128 {
    if fraction.is_nan() || fraction <= 0.0 {
        return 0;
    }
    // 2^64 as f64 is exact; `as` saturates and is well defined for any f64.
    (fraction * 18_446_744_073_709_551_616.0) as u128
}

/// Whether the key with these canonical bytes belongs to the `fraction` of keys kept
/// whole (`0.0` keeps none, `1.0` keeps all).
///
/// ```
/// use hindsight_correlation::fingers_crossed::is_sampled;
///
/// let kept = (0..10_000).filter(|i| is_sampled(format!("req-{i}").as_bytes(), 0.1)).count();
/// assert!((800..1200).contains(&kept));
/// ```
pub fn is_sampled(bytes: &[u8], fraction: f64) -> bool {
    u128::from(sample_hash(bytes)) < threshold(fraction)
}

/// A correlation key that can show its canonical bytes, which the `keep_healthy` sample
/// hashes (see [`sample_hash`]).
///
/// The bytes must be the key's *canonical string form* — the request id exactly as
/// written, a trace id as 32 lowercase hex digits — so that every component that samples
/// by key chooses the same keys. Their length also counts towards the key's memory
/// estimate.
///
/// ```
/// use std::borrow::Cow;
/// use hindsight_correlation::fingers_crossed::SampleKey;
///
/// #[derive(Clone, PartialEq, Eq, Hash)]
/// struct TraceId([u8; 16]);
///
/// impl SampleKey for TraceId {
///     fn sample_bytes(&self) -> Cow<'_, [u8]> {
///         let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
///         Cow::Owned(hex.into_bytes())
///     }
/// }
///
/// assert_eq!(TraceId([0xab; 16]).sample_bytes().len(), 32);
/// ```
pub trait SampleKey {
    /// The key's canonical bytes. Called once when a key is first seen, not per record.
    fn sample_bytes(&self) -> Cow<'_, [u8]>;
}

impl SampleKey for str {
    fn sample_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl SampleKey for [u8] {
    fn sample_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl SampleKey for String {
    fn sample_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl SampleKey for Vec<u8> {
    fn sample_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl<K: SampleKey + ?Sized> SampleKey for &K {
    fn sample_bytes(&self) -> Cow<'_, [u8]> {
        (**self).sample_bytes()
    }
}

impl<K: SampleKey + ?Sized> SampleKey for Box<K> {
    fn sample_bytes(&self) -> Cow<'_, [u8]> {
        (**self).sample_bytes()
    }
}

impl<K: SampleKey + ?Sized> SampleKey for Arc<K> {
    fn sample_bytes(&self) -> Cow<'_, [u8]> {
        (**self).sample_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn sample_hash_is_pinned() {
        // Values fixed forever: other components reimplement this function.
        assert_eq!(sample_hash(b""), PINNED_EMPTY);
        assert_eq!(sample_hash(b"a"), PINNED_A);
        assert_eq!(
            sample_hash(b"4bf92f3577b34da6a3ce929d0e0e4736"),
            PINNED_TRACE
        );
    }

    // Cross-checked against an independent implementation of the definition.
    const PINNED_EMPTY: u64 = 0xefd0_1f60_ba99_2926;
    const PINNED_A: u64 = 0x82a2_a958_a9be_ce5b;
    const PINNED_TRACE: u64 = 0xe668_f55d_97f2_d8a8;

    #[test]
    fn threshold_edges() {
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(-1.0), 0);
        assert_eq!(threshold(f64::NAN), 0);
        assert_eq!(threshold(1.0), 1u128 << 64);
        assert_eq!(threshold(0.5), 1u128 << 63);
        assert!(is_sampled(b"", 1.0));
        assert!(!is_sampled(b"", 0.0));
    }

    #[test]
    fn fraction_is_respected_over_many_keys() {
        // Deterministic inputs in three shapes that real ids take; wide bounds (the
        // standard deviation at n = 100 000, p = 0.01 is about 31).
        let shapes: [fn(u64) -> String; 3] = [
            |i| format!("req-{i}"),
            |i| format!("{:032x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15),
            |i| format!("{i:08}-aaaa-bbbb-cccc-dddddddddddd"),
        ];
        for shape in shapes {
            for (fraction, low, high) in [(0.01, 850, 1150), (0.25, 24_000, 26_000)] {
                let kept = (0..100_000u64)
                    .filter(|&i| is_sampled(shape(i).as_bytes(), fraction))
                    .count();
                assert!(
                    (low..=high).contains(&kept),
                    "{fraction}: kept {kept} of 100000 ({})",
                    shape(0)
                );
            }
        }
    }

    #[test]
    fn sampled_sets_nest_as_the_fraction_grows() {
        for i in 0..10_000 {
            let key = format!("req-{i}");
            if is_sampled(key.as_bytes(), 0.01) {
                assert!(is_sampled(key.as_bytes(), 0.02));
            }
        }
    }

    #[test]
    fn sample_key_impls_agree() {
        let s = String::from("req-1");
        assert_eq!(s.sample_bytes(), "req-1".sample_bytes());
        assert_eq!(Arc::<str>::from("req-1").sample_bytes(), s.sample_bytes());
        assert_eq!(b"req-1".to_vec().sample_bytes(), s.sample_bytes());
        assert_eq!(
            Box::<[u8]>::from(&b"req-1"[..]).sample_bytes(),
            s.sample_bytes()
        );
    }
}
