#!/usr/bin/env bash
# Listing benchmark: SFTP readdir of N objects, eugate vs `rclone serve sftp` over crypt on the
# same Garage (benches/list.py). Installs and builds what is missing as benches/e2e.sh does.
# Usage: benches/list.sh [--files 10000] [--runs 5] [--size 1000] [--s3-plain-http] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_PY=benches/list.py exec benches/e2e.sh "$@"
