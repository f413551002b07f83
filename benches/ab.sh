#!/usr/bin/env bash
# A/B comparison of two eugate builds on the end-to-end upload path, interleaved so that both
# see the same machine noise. Usage:
#   benches/ab.sh BASE_REV [N] [extra benches/e2e.py args]
# Builds BASE_REV (a git revision) in a temporary worktree and the working tree as it is, then
# runs N (default 5) pairs of single 1 GiB uploads (base, new, base, new, ...) through
# benches/e2e.py (eugate only, S3 over TLS unless told otherwise) and prints each pair and the
# median of the per-pair differences and ratios of server CPU-s per GiB. Single runs on a
# shared 2-core machine vary by ±0.15 CPU-s/GiB; the pairing is what makes a 5 % change visible.
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:?usage: benches/ab.sh BASE_REV [N] [e2e.py args]}
n=${2:-5}
shift $(( $# >= 2 ? 2 : 1 ))

GARAGE="${GARAGE:-/opt/eugate-tools/bin/garage}"
[ -x "$GARAGE" ] || GARAGE="$(command -v garage)" || { echo "no Garage: run benches/e2e.sh once" >&2; exit 1; }

work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$base_rev" >/dev/null
# Both builds share this tree's target dir, so dependencies are built once; only eugate itself
# is rebuilt for each (the base first, then the working tree, which leaves target/ as it was).
CARGO_TARGET_DIR="$PWD/target" cargo build --release --bin eugate \
    --manifest-path "$work/base/Cargo.toml" >&2
cp target/release/eugate "$work/eugate-base"
cargo build --release --bin eugate >&2
cp target/release/eugate "$work/eugate-new"
results=()
for i in $(seq 1 "$n"); do
    a=$(python3 benches/e2e.py --eugate "$work/eugate-base" --garage "$GARAGE" --peers eugate \
        --size 1G --runs 1 --no-concurrent --no-download "$@" 2>/dev/null | tail -1)
    b=$(python3 benches/e2e.py --eugate "$work/eugate-new" --garage "$GARAGE" --peers eugate \
        --size 1G --runs 1 --no-concurrent --no-download "$@" 2>/dev/null | tail -1)
    # "e2e: eugate <MB/s> MB/s <CPU> CPU-s/GiB <RSS> MiB; ..."
    ca=$(awk '{print $5}' <<<"$a"); cb=$(awk '{print $5}' <<<"$b")
    ra=$(awk '{print $7}' <<<"$a"); rb=$(awk '{print $7}' <<<"$b")
    printf 'pair %d: base %s CPU-s/GiB %s MiB, new %s CPU-s/GiB %s MiB\n' "$i" "$ca" "$ra" "$cb" "$rb"
    results+=("$ca $cb")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
d = statistics.median(b - a for a, b in pairs)
r = statistics.median(b / a for a, b in pairs)
print(f"ab: base {statistics.median(a for a, _ in pairs):.2f} new {statistics.median(b for _, b in pairs):.2f} CPU-s/GiB (medians); "
      f"per-pair difference {d:+.2f}, ratio new/base {r:.3f} (median of {len(pairs)} pairs)")
'
