//! Multipart part sizing. The total size of an SFTP upload is unknown when it starts, so the
//! part size grows with the part number: 8 MiB for parts 1–1000, then doubling every 1000 parts.
//! 10,000 parts then hold 8 MiB × 1000 × (2^10 − 1) ≈ 8 TiB, more than S3's 5 TiB object limit,
//! while every upload below 8 GB keeps 8 MiB parts (and so a small, fixed memory footprint).

/// S3's limit on part numbers.
pub const MAX_PARTS: u32 = 10_000;
/// The smallest part this gateway sends (S3's floor is 5 MiB for all but the last part).
pub const MIN_PART_SIZE: usize = 8 << 20;
/// S3's ceiling for one part.
pub const MAX_PART_SIZE: usize = 5 << 30;
const PARTS_PER_STEP: u32 = 1000;

/// Size of part `number` (1-based). Every part but the last holds at least this much, and less
/// than one more of the writer's buffers (≈ 1 MiB): parts are made of whole buffers.
pub fn part_size(number: u32) -> usize {
    let step = number.saturating_sub(1) / PARTS_PER_STEP;
    MIN_PART_SIZE
        .checked_shl(step)
        .unwrap_or(MAX_PART_SIZE)
        .min(MAX_PART_SIZE)
}

/// Total bytes parts 1..=n hold when full.
pub fn capacity(parts: u32) -> u64 {
    (1..=parts).map(|n| part_size(n) as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_parts_hold_more_than_the_s3_object_limit() {
        assert!(capacity(MAX_PARTS) > 5u64 << 40);
    }

    #[test]
    fn sizes_start_at_8_mib_and_only_grow() {
        assert_eq!(part_size(1), MIN_PART_SIZE);
        assert_eq!(part_size(1000), MIN_PART_SIZE);
        assert_eq!(part_size(1001), 2 * MIN_PART_SIZE);
        let mut last = 0;
        for n in 1..=MAX_PARTS {
            let s = part_size(n);
            assert!(s >= last && (5 << 20..=MAX_PART_SIZE).contains(&s));
            last = s;
        }
        // A 1 GiB upload: 128 parts of 8 MiB.
        assert!(capacity(128) >= 1 << 30 && capacity(127) < 1 << 30);
    }
}
