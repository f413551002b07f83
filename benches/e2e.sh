#!/usr/bin/env bash
# End-to-end SFTP benchmark: eugate vs `rclone serve sftp` (crypt over S3) vs OpenSSH sftp-server,
# plus an FTPS row (eugate uploaded to with `curl --ssl-reqd`, ratio to its SFTP figures),
# all on loopback, one Garage as the S3 server. Usage:
#   benches/e2e.sh [--size 1G] [--runs 3] [--eugate-dest s3|fs]
#                  [--peers eugate,eugate-ftps,rclone-crypt,openssh]
#                  [--s3-plain-http] [--rss-concurrent 32] [--keep]
# (see `benches/e2e.py --help`). S3 goes over TLS by default (stunnel in front of Garage, a throwaway CA).
# Installs rclone / openssh-server / the sftp client / stunnel4 / openssl / curl if missing,
# builds eugate (release), and runs benches/e2e.py, which starts every server in a temp dir,
# measures, tears everything down (also on Ctrl-C) and prints a table ending in the `e2e:` line.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sftp >/dev/null || need_apt+=(openssh-client)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v rclone >/dev/null || need_apt+=(rclone)
command -v stunnel >/dev/null || command -v stunnel4 >/dev/null || need_apt+=(stunnel4)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "[e2e] installing ${need_apt[*]}" >&2
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}" >&2 \
        || { $sudo_ apt-get update >&2 && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}" >&2; }
fi

GARAGE="${GARAGE:-/opt/eugate-tools/bin/garage}"
if [ ! -x "$GARAGE" ] && command -v garage >/dev/null; then GARAGE="$(command -v garage)"; fi
if [ ! -x "$GARAGE" ]; then
    echo "[e2e] building Garage 2.5.0 into /opt/eugate-tools (takes 20-40 min once)" >&2
    cargo install garage --version 2.5.0 --locked --no-default-features \
        --features bundled-libs,sqlite --root /opt/eugate-tools >&2
    GARAGE=/opt/eugate-tools/bin/garage
fi
export GARAGE

cargo build --release --bin eugate >&2
# BENCH_PY: another harness with the same setup (benches/list.sh).
exec python3 "${BENCH_PY:-benches/e2e.py}" --eugate target/release/eugate --garage "$GARAGE" "$@"
