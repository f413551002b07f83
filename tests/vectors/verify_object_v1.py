#!/usr/bin/env python3
"""Independent check of object-v1.json against docs/object-format.md (not against the Rust code).

Re-implements the format from the document with the `cryptography` package and rebuilds every
vector's ciphertext. Usage: python3 tests/vectors/verify_object_v1.py
"""
import hashlib, json, os, struct, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
import hmac

S = 65536

def hkdf(salt, ikm, info, n):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return HKDFExpand(hashes.SHA256(), n, info).derive(prk)

def build(v):
    kek, dk, salt = (bytes.fromhex(v[k]) for k in ("kek", "data_key", "salt"))
    wn, oid = bytes.fromhex(v["wrap_nonce"]), bytes.fromhex(v["object_id"])
    t, k = v["tenant"].encode(), v["key_id"].encode()
    hlen = 156 + len(t) + len(k)
    bound = (b"EUGATE" + bytes([1, 1]) + struct.pack(">H", hlen) + bytes([len(t)]) + t
             + bytes([len(k)]) + k + struct.pack(">I", v["key_version"]) + oid + salt)
    wrapped = AESGCM(kek).encrypt(wn, dk, bound)
    pk = hkdf(salt, dk, b"eugate object v1 payload key", 32)
    prefix = hkdf(salt, dk, b"eugate object v1 nonce prefix", 7)
    commit = hkdf(salt, dk, b"eugate object v1 key commitment", 32)
    assert pk.hex() == v["payload_key"] and prefix.hex() == v["nonce_prefix"]
    assert commit.hex() == v["commitment"]
    header = bound + wn + wrapped + commit
    assert len(header) == hlen and header.hex() == v["header"], v["name"]
    p = bytes(i % 251 for i in range(v["plaintext_len"]))
    n = max(1, -(-len(p) // S))
    aead, out = AESGCM(pk), [header]
    for i in range(n):
        nonce = prefix + struct.pack(">I", i) + bytes([1 if i == n - 1 else 0])
        out.append(aead.encrypt(nonce, p[i * S:(i + 1) * S], b""))
    obj = b"".join(out)
    assert len(obj) == v["sealed_len"], v["name"]
    assert hashlib.sha256(obj).hexdigest() == v["ciphertext_sha256"], v["name"]
    if "ciphertext" in v:
        assert obj.hex() == v["ciphertext"], v["name"]
    return v["name"]

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "object-v1.json")
vectors = json.load(open(path))["vectors"]
if not vectors:
    sys.exit(f"{path}: no vectors to check")
for v in vectors:
    print("ok", build(v))
