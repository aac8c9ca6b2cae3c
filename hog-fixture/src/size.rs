//! Byte sizes on the command line and in control messages: `65536`, `64K`, `64KiB`, `1M`,
//! `1MiB`, `2G`, `2GiB`.
//!
//! Every suffix is a power of 1024 (`K` and `KiB` mean the same), matched without regard to
//! case. Decimal suffixes (`KB`, `MB`) are refused rather than guessed at, and so are
//! fractions, signs and values that do not fit in a `u64`.

use std::fmt;

/// Why a size was refused. The message names the input and says what is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeError {
    /// Nothing but white space.
    Empty,
    /// The size does not start with a decimal digit.
    NotANumber {
        /// The input, trimmed.
        input: String,
    },
    /// Digits followed by something that is not one of the suffixes.
    UnknownSuffix {
        /// The input, trimmed.
        input: String,
        /// What followed the digits.
        suffix: String,
    },
    /// The value does not fit in 64 bits.
    TooLarge {
        /// The input, trimmed.
        input: String,
    },
}

const ACCEPTED: &str = "a number of bytes, optionally followed by K, KiB, M, MiB, G or GiB \
                        (powers of 1024)";

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty size: expected {ACCEPTED}"),
            Self::NotANumber { input } => {
                write!(f, "size {input:?} is not a number: expected {ACCEPTED}")
            }
            Self::UnknownSuffix { input, suffix } => write!(
                f,
                "size {input:?} has an unknown suffix {suffix:?}: expected {ACCEPTED}"
            ),
            Self::TooLarge { input } => write!(f, "size {input:?} does not fit in 64 bits"),
        }
    }
}

impl std::error::Error for SizeError {}

/// The multiplier of a suffix, or `None` if it is not one we accept.
fn multiplier(suffix: &str) -> Option<u64> {
    const KIB: u64 = 1024;
    match suffix.to_ascii_lowercase().as_str() {
        "" => Some(1),
        "k" | "kib" => Some(KIB),
        "m" | "mib" => Some(KIB * KIB),
        "g" | "gib" => Some(KIB * KIB * KIB),
        _ => None,
    }
}

/// Parses a size: decimal digits, then optionally (after optional spaces) a suffix.
///
/// ```
/// use hog_fixture::parse_size;
/// assert_eq!(parse_size("64KiB"), Ok(65536));
/// assert_eq!(parse_size("1 M"), Ok(1 << 20));
/// assert!(parse_size("1MB").is_err());
/// ```
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(SizeError::Empty);
    }
    let digits_end = input
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(input.len());
    let (digits, rest) = input.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeError::NotANumber {
            input: input.to_owned(),
        });
    }
    let suffix = rest.trim_start();
    let Some(unit) = multiplier(suffix) else {
        return Err(SizeError::UnknownSuffix {
            input: input.to_owned(),
            suffix: suffix.to_owned(),
        });
    };
    let too_large = || SizeError::TooLarge {
        input: input.to_owned(),
    };
    // Only digits are left, so the only way `parse` fails is overflow.
    let value: u64 = digits.parse().map_err(|_| too_large())?;
    value.checked_mul(unit).ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes_and_every_suffix_are_powers_of_1024() {
        let cases = [
            ("0", 0),
            ("4096", 4096),
            ("  17 ", 17),
            ("1K", 1024),
            ("1k", 1024),
            ("64KiB", 65536),
            ("64kib", 65536),
            ("1M", 1 << 20),
            ("3MiB", 3 << 20),
            ("1 MiB", 1 << 20),
            ("2G", 2 << 30),
            ("2GiB", 2 << 30),
            ("18446744073709551615", u64::MAX),
            ("17179869183G", 17_179_869_183 << 30),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn empty_and_non_numbers_are_refused() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("   "), Err(SizeError::Empty));
        for input in ["K", "-1", "+1", "x12", ".5M"] {
            assert!(
                matches!(parse_size(input), Err(SizeError::NotANumber { .. })),
                "{input:?}"
            );
        }
    }

    #[test]
    fn decimal_and_unknown_suffixes_are_refused_by_name() {
        for (input, suffix) in [
            ("1MB", "MB"),
            ("1kb", "kb"),
            ("1T", "T"),
            ("1.5M", ".5M"),
            ("12 bytes", "bytes"),
            ("1KiB2", "KiB2"),
        ] {
            assert_eq!(
                parse_size(input),
                Err(SizeError::UnknownSuffix {
                    input: input.to_owned(),
                    suffix: suffix.to_owned()
                }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn values_beyond_64_bits_are_refused() {
        for input in [
            "18446744073709551616",
            "17179869184G",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(parse_size(input), Err(SizeError::TooLarge { .. })),
                "{input:?}"
            );
        }
    }

    #[test]
    fn messages_name_the_input_and_what_is_accepted() {
        let message = parse_size("1MB").err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some(
                "size \"1MB\" has an unknown suffix \"MB\": expected a number of bytes, \
                 optionally followed by K, KiB, M, MiB, G or GiB (powers of 1024)"
            )
        );
        let message = parse_size("lots").err().map(|e| e.to_string());
        assert!(message.is_some_and(|m| m.starts_with("size \"lots\" is not a number")));
    }
}
