#!/usr/bin/env bash
# Makes a throwaway private CA, a server certificate and a client certificate, for demos and
# tests only (certs/README.md). Never use these for production: the CA key sits beside them.
#
#   certs/make-demo-ca.sh [--client NAME] [--days N] DIR [SERVER_NAME...]
#
# DIR is created if missing (0700). The server certificate names localhost, 127.0.0.1 and every
# SERVER_NAME (a DNS name or an IP address). Keys are ECDSA P-256, PKCS#8 PEM, mode 0600.
# Existing files are never overwritten.
set -euo pipefail

usage() {
    echo "usage: $0 [--client NAME] [--days N] DIR [SERVER_NAME...]" >&2
    exit 2
}

client_cn="demo-client"
days=30
while [[ $# -gt 0 ]]; do
    case "$1" in
    --client)
        [[ $# -ge 2 ]] || usage
        client_cn="$2"
        shift 2
        ;;
    --days)
        [[ $# -ge 2 ]] || usage
        days="$2"
        shift 2
        ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[[ $# -ge 1 ]] || usage
dir="$1"
shift

if ! [[ "$days" =~ ^[0-9]+$ ]] || ((days < 1 || days > 825)); then
    echo "--days must be a whole number from 1 to 825, not '$days'" >&2
    exit 2
fi
# The client name becomes the certificate's subject CN; keep it to characters that need no
# escaping in a subject or in the gateway's configuration.
if ! [[ "$client_cn" =~ ^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$ ]]; then
    echo "--client '$client_cn': use letters, digits, '.', '_', '@', '-' (at most 64)" >&2
    exit 2
fi

# subjectAltName entries. Names are checked before they reach openssl's config syntax, so a
# comma or newline in an argument cannot add entries of its own.
san="DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
    if [[ "$name" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || [[ "$name" =~ ^[0-9A-Fa-f:]+$ && "$name" == *:* ]]; then
        san="$san,IP:$name"
    elif [[ "$name" =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]; then
        san="$san,DNS:$name"
    else
        echo "'$name' is neither a DNS name nor an IP address" >&2
        exit 2
    fi
done

files=(ca.pem ca.key server.pem server.key client.pem client.key)
mkdir -p -m 0700 "$dir"
for f in "${files[@]}"; do
    if [[ -e "$dir/$f" ]]; then
        echo "$dir/$f exists; refusing to overwrite it (pick an empty directory)" >&2
        exit 1
    fi
done

umask 077
work="$(mktemp -d "$dir/.make-demo-ca.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# quiet CMD...: runs openssl without its chatter, showing it only if the command fails.
quiet() { "$@" 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }; }
newkey() { quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
serial() { echo "0x$(openssl rand -hex 16)"; }

# Every extension is named here, and the system's openssl.cnf is not read, so what the
# certificates contain does not depend on the machine that made them.
cat >"$work/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
export OPENSSL_CONF="$work/openssl.cnf"

# The CA: may sign end-entity certificates only (pathlen 0). Its name carries random bits: two
# CAs made in the same second must not share a subject, or a verifier that trusts one matches the
# other's certificates to it by name and fails on the signature instead of "unknown CA".
newkey "$work/ca.key"
quiet openssl req -x509 -new -config "$OPENSSL_CONF" -extensions ca_ext -key "$work/ca.key" \
    -sha256 -days "$days" -set_serial "$(serial)" \
    -subj "/O=eugate demo/CN=eugate demo CA $(date -u +%Y%m%dT%H%M%SZ) $(openssl rand -hex 4)" -out "$work/ca.pem"

# sign NAME SUBJECT: a certificate for NAME.key with the extensions [NAME_ext], signed by the CA.
sign() {
    newkey "$work/$1.key"
    quiet openssl req -new -config "$OPENSSL_CONF" -key "$work/$1.key" -subj "$2" -out "$work/$1.csr"
    quiet openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -set_serial "$(serial)" -days "$days" -sha256 \
        -extfile "$OPENSSL_CONF" -extensions "$1_ext" -out "$work/$1.pem"
}
sign server "/O=eugate demo/CN=localhost"
sign client "/O=eugate demo/CN=$client_cn"

for f in "${files[@]}"; do
    case "$f" in
    *.key) chmod 0600 "$work/$f" ;;
    *) chmod 0644 "$work/$f" ;;
    esac
    mv "$work/$f" "$dir/$f"
done

fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
cat <<EOF
made a throwaway demo CA in $dir (valid $days days; for demos and tests only):
  ca.pem      the CA certificate: what clients trust (curl --cacert, lftp ssl:ca-file)
  ca.key      the CA private key (0600)
  server.pem  server certificate, SAN $san
  server.key  its private key (0600)
  client.pem  client certificate, subject CN=$client_cn, O=eugate demo
  client.key  its private key (0600)
SHA-256 fingerprints:
  ca      $(fp "$dir/ca.pem")
  server  $(fp "$dir/server.pem")
  client  $(fp "$dir/client.pem")
EOF
