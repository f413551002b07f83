#!/usr/bin/env bash
# Scale benchmark: 32 concurrent 64 MiB uploads through HAProxy to two eugate instances vs the same
# uploads to one instance directly, on a 3-node Garage cluster (replication_factor 3), all on
# loopback. Usage:
#   benches/scale.sh [--count 32] [--size 64M] [--runs 2] [--garage-nodes 1|3] [--warmup 16M]
#                    [--proxy-protocol] [--memory-budget 512MiB] [--s3-plain-http] [--json out.json] [--keep]
# (see `benches/scale.py --help`). Installs HAProxy / the sftp client / stunnel4 / openssl if
# missing, builds eugate (release), and runs benches/scale.py, which starts every server in a temp
# dir, measures both setups, checks the bucket, tears everything down (also on Ctrl-C) and prints
# two tables ending in the `scale:` line.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
command -v sftp >/dev/null || need_apt+=(openssh-client)
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
command -v stunnel >/dev/null || command -v stunnel4 >/dev/null || need_apt+=(stunnel4)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "[scale] installing ${need_apt[*]}" >&2
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}" >&2 \
        || { $sudo_ apt-get update >&2 && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}" >&2; }
fi

GARAGE="${GARAGE:-/opt/eugate-tools/bin/garage}"
if [ ! -x "$GARAGE" ] && command -v garage >/dev/null; then GARAGE="$(command -v garage)"; fi
if [ ! -x "$GARAGE" ]; then
    echo "[scale] building Garage 2.5.0 into /opt/eugate-tools (takes 20-40 min once)" >&2
    cargo install garage --version 2.5.0 --locked --no-default-features \
        --features bundled-libs,sqlite --root /opt/eugate-tools >&2
    GARAGE=/opt/eugate-tools/bin/garage
fi
export GARAGE

cargo build --release --bin eugate >&2
exec python3 benches/scale.py --eugate target/release/eugate --garage "$GARAGE" "$@"
