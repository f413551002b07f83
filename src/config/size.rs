//! Human byte sizes in config ("16MiB", "512 KiB", or a plain integer of bytes).

use super::Collector;
use super::raw::RawSize;

/// The size `raw` gives for `key`, or `default` if absent; an unreadable one is reported with an
/// example of what to write (`example`, e.g. "16MiB") and replaced by `default`.
pub(super) fn size_or(
    raw: &Option<RawSize>,
    key: &str,
    default: u64,
    example: &str,
    c: &mut Collector,
) -> u64 {
    match raw {
        None => default,
        Some(RawSize::Bytes(n)) => *n,
        Some(RawSize::Text(t)) => parse_size(t).unwrap_or_else(|e| {
            c.push(key, format!("{e}; write a size such as \"{example}\""));
            default
        }),
    }
}

/// Parses `16MiB`, `16 MiB`, `1GiB`, `4096`, `64KiB`, `8MB`. Units are case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{text}` does not start with a number"));
    }
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("`{digits}` is too large"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` overflows 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;
    use proptest::prelude::*;

    #[test]
    fn units() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("16 mib"), Ok(16 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("18446744073709551615GiB").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = parse_size(&s);
        }

        #[test]
        fn plain_numbers_round_trip(n in any::<u32>()) {
            prop_assert_eq!(parse_size(&n.to_string()), Ok(u64::from(n)));
        }
    }
}
