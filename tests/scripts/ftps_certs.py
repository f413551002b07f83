#!/usr/bin/env python3
"""Client certificates for tests/ftps_*.rs that certs/make-demo-ca.sh does not make: another
client of the same demo CA, or an expired one (openssl 3.0 cannot back-date a certificate).
Uses the `cryptography` package. Writes PREFIX.pem and PREFIX.key (0600)."""

import argparse
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ca-dir", required=True)
    p.add_argument("--cn", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--expired", action="store_true")
    a = p.parse_args()
    ca_cert = x509.load_pem_x509_certificate(open(os.path.join(a.ca_dir, "ca.pem"), "rb").read())
    ca_key = serialization.load_pem_private_key(open(os.path.join(a.ca_dir, "ca.key"), "rb").read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    if a.expired:
        start, end = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
    else:
        start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eugate demo"),
        x509.NameAttribute(NameOID.COMMON_NAME, a.cn),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    with open(a.out + ".pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(a.out + ".key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


if __name__ == "__main__":
    main()
