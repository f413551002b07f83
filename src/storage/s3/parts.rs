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
/// A part ends with the buffer that crosses its size. The transfer layer's buffers are 4 sealed
/// segments, so 32 of them cross 8 MiB by 2 KiB (plus the header in part 1): the budget
/// reserved per part in memory covers that much beyond the part size.
pub const PART_SLACK: usize = 64 * 1024;

/// Size of part `number` (1-based). Every part but the last holds at least this much, and less
/// than one more of the writer's buffers (≈ 256 KiB): parts are made of whole buffers.
pub fn part_size(number: u32) -> usize {
    let step = number.saturating_sub(1) / PARTS_PER_STEP;
    MIN_PART_SIZE
        .checked_shl(step)
        .unwrap_or(MAX_PART_SIZE)
        .min(MAX_PART_SIZE)
}

/// Whether part `number` is spooled to a file instead of held in memory. A part in memory holds
/// its whole size from its first byte until S3 acknowledged it, so it must fit in the budget
/// beside the parts in flight; larger ones (from part 2001 of an upload at a 64 MiB budget, as
/// a 5 TiB object's 512 MiB to 4 GiB parts must be at any budget) are spooled and cost one
/// buffer at a time.
pub fn spooled(number: u32, budget: usize, in_flight: usize) -> bool {
    part_size(number) + PART_SLACK > budget / (in_flight + 1)
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

    /// The largest buffer the transfer layer hands over (4 sealed 64 KiB segments and the
    /// header: about 256 KiB), with a wide margin: a buffer of up to 2 MiB still fits.
    const BUFFER_MAX: usize = 2 << 20;

    /// What one upload reserves at once while part `n` fills, with up to `in_flight` earlier
    /// parts still being sent: (largest single reservation, all of them together).
    fn reservations(n: u32, budget: usize, in_flight: usize) -> (usize, usize) {
        let sending = |m: u32| {
            if spooled(m, budget, in_flight) {
                super::super::spool::SEND_BUDGET
            } else {
                part_size(m) + PART_SLACK
            }
        };
        let filling = if spooled(n, budget, in_flight) {
            BUFFER_MAX
        } else {
            part_size(n) + PART_SLACK
        };
        let earlier: usize = (n.saturating_sub(in_flight as u32).max(1)..n)
            .map(sending)
            .sum();
        (filling.max(sending(n)), filling + earlier)
    }

    /// Every part of a 5 TiB upload can proceed within a 64 MiB budget (and the smallest and
    /// default ones), beside a full share of held client data: no single reservation exceeds
    /// what the held share leaves, and one upload's reservations together fit the budget.
    /// Arithmetic only: nothing is allocated.
    #[test]
    fn every_part_of_a_5_tib_upload_fits_the_budget() {
        const FIVE_TIB: u64 = 5 << 40;
        let last = (1..=MAX_PARTS)
            .find(|&n| capacity(n) >= FIVE_TIB)
            .expect("10,000 parts hold 5 TiB");
        assert!(
            part_size(last) > 64 << 20,
            "such parts exceed the budget itself"
        );
        for budget in [16usize << 20, 64 << 20, 256 << 20] {
            // Held writes and listings may take at most this much (transfer::client_held_share).
            let held = (budget / 2).min(budget - super::super::MIN_PART_BUDGET);
            for in_flight in [1usize, 2, 4, 8] {
                for n in 1..=last {
                    let (single, together) = reservations(n, budget, in_flight);
                    assert!(
                        single <= budget - held,
                        "part {n} needs {single} at once; {budget} budget, {in_flight} in flight"
                    );
                    assert!(
                        together <= budget,
                        "part {n}: {together} reserved together; {budget} budget, {in_flight} in flight"
                    );
                }
            }
        }
        // The case the issue measured: part 5001 is 256 MiB; at a 64 MiB budget it is spooled.
        assert_eq!(part_size(5001), 256 << 20);
        assert!(spooled(5001, 64 << 20, 2));
        // Uploads below 8 GB keep their 8 MiB parts in memory at the default budget.
        assert!(!spooled(1000, 256 << 20, 2));
    }
}
