#!/usr/bin/env python3
"""Independent check of object-v1.json, object-v2.json and object-v3.json against
docs/object-format.md (not against the Rust code).

Re-implements the format from the document with the `cryptography` package: builds every
vector's header (version 1: data key wrapped under the tenant KEK; version 2: under the object
key W, with the provider kind and blob in the authenticated bytes; version 3: either, with the
provider kind 0x00 for a keyring KEK, zero padding to 2048 bytes), unwraps the stored header's
data key again, derives the key schedule, checks the commitment and rebuilds the ciphertext.
Usage: python3 tests/vectors/verify_object.py
"""
import hashlib, hmac, json, os, struct, sys
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

S = 65536
HERE = os.path.dirname(os.path.abspath(__file__))


def hkdf(salt, ikm, info, n):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return HKDFExpand(hashes.SHA256(), n, info).derive(prk)


def parse_header(h):
    """Parses a header per the document; returns (version, fields, bound_len)."""
    assert h[:6] == b"EUGATE"
    version, suite, hlen = h[6], h[7], struct.unpack(">H", h[8:10])[0]
    assert version in (1, 2, 3) and suite == 1 and hlen == len(h)
    assert version != 3 or hlen == 2048
    pos = 10
    t = h[pos]; tenant = h[pos + 1:pos + 1 + t]; pos += 1 + t
    k = h[pos]; key_id = h[pos + 1:pos + 1 + k]; pos += 1 + k
    key_version = struct.unpack(">I", h[pos:pos + 4])[0]; pos += 4
    f = {"tenant": tenant.decode(), "key_id": key_id.decode(), "key_version": key_version}
    if version >= 2:
        f["provider"] = h[pos]
        b = struct.unpack(">H", h[pos + 1:pos + 3])[0]
        if version == 3 and f["provider"] == 0:
            assert b == 0  # a keyring KEK: no blob
        else:
            assert f["provider"] in (1, 2, 3) and 1 <= b <= 1024
        f["blob"] = h[pos + 3:pos + 3 + b]; pos += 3 + b
    if version == 3:
        # Zero padding up to the fixed tail (object id 16, salt 32, nonce 12, wrap 48, commit 32).
        assert h[pos:2048 - 140] == bytes(2048 - 140 - pos); pos = 2048 - 140
    f["object_id"] = h[pos:pos + 16]; pos += 16
    f["salt"] = h[pos:pos + 32]; pos += 32
    bound_len = pos
    f["wrap_nonce"] = h[pos:pos + 12]; pos += 12
    f["wrapped_key"] = h[pos:pos + 48]; pos += 48
    f["commitment"] = h[pos:pos + 32]; pos += 32
    assert pos == hlen
    return version, f, bound_len


def build(v, version):
    kek, dk, salt = (bytes.fromhex(v[k]) for k in ("kek", "data_key", "salt"))
    wn, oid = bytes.fromhex(v["wrap_nonce"]), bytes.fromhex(v["object_id"])
    t, k = v["tenant"].encode(), v["key_id"].encode()
    if "provider" not in v:
        assert version in (1, 3) and "blob" not in v
        # Version 3 records a keyring KEK as provider kind 0x00 with an empty blob.
        external = b"" if version == 1 else b"\x00\x00\x00"
    else:
        assert version in (2, 3)
        blob = bytes.fromhex(v["blob"])
        external = bytes([v["provider"]]) + struct.pack(">H", len(blob)) + blob
        # The context the provider bound W to: label ‖ 0x00 ‖ T ‖ tenant ‖ object_id.
        context = b"eugate object v2 key" + b"\x00" + bytes([len(t)]) + t + oid
        assert context.hex() == v["provider_context"], v["name"]
    hlen = 156 + len(t) + len(k) + len(external)
    padding = b""
    if version == 3:
        padding, hlen = bytes(2048 - hlen), 2048
    bound = (b"EUGATE" + bytes([version, 1]) + struct.pack(">H", hlen) + bytes([len(t)]) + t
             + bytes([len(k)]) + k + struct.pack(">I", v["key_version"]) + external + padding
             + oid + salt)
    wrapped = AESGCM(kek).encrypt(wn, dk, bound)
    pk = hkdf(salt, dk, b"eugate object v1 payload key", 32)
    prefix = hkdf(salt, dk, b"eugate object v1 nonce prefix", 7)
    commit = hkdf(salt, dk, b"eugate object v1 key commitment", 32)
    assert pk.hex() == v["payload_key"] and prefix.hex() == v["nonce_prefix"]
    assert commit.hex() == v["commitment"]
    header = bound + wn + wrapped + commit
    assert len(header) == hlen and header.hex() == v["header"], v["name"]

    # The reader's side, from the stored header alone: parse, unwrap under the (object) KEK with
    # the header bytes before the wrap nonce as AAD, check the commitment.
    stored = bytes.fromhex(v["header"])
    pv, f, bound_len = parse_header(stored)
    assert pv == version and f["tenant"] == v["tenant"] and f["object_id"] == oid
    if "provider" in v:
        assert f["provider"] == v["provider"] and f["blob"].hex() == v["blob"]
    aad = stored[:bound_len]
    dk2 = AESGCM(kek).decrypt(f["wrap_nonce"], f["wrapped_key"], aad)
    assert dk2 == dk and hkdf(f["salt"], dk2, b"eugate object v1 key commitment", 32) == f["commitment"]
    # Every authenticated byte matters: flipping any one (including provider kind and blob) fails.
    for i in range(bound_len):
        bad = bytearray(aad); bad[i] ^= 1
        try:
            AESGCM(kek).decrypt(f["wrap_nonce"], f["wrapped_key"], bytes(bad))
            raise AssertionError(f"{v['name']}: byte {i} not authenticated")
        except InvalidTag:
            pass

    p = bytes(i % 251 for i in range(v["plaintext_len"]))
    n = max(1, -(-len(p) // S))
    aead, out = AESGCM(pk), [header]
    for i in range(n):
        nonce = prefix + struct.pack(">I", i) + bytes([1 if i == n - 1 else 0])
        out.append(aead.encrypt(nonce, p[i * S:(i + 1) * S], b""))
    obj = b"".join(out)
    assert len(obj) == v["sealed_len"], v["name"]
    assert hashlib.sha256(obj).hexdigest() == v["ciphertext_sha256"], v["name"]
    assert [c[-16:].hex() for c in out[1:]] == v["segment_tags"], v["name"]
    if "ciphertext" in v:
        assert obj.hex() == v["ciphertext"], v["name"]
    return v["name"]


for version in (1, 2, 3):
    path = os.path.join(HERE, f"object-v{version}.json")
    vectors = json.load(open(path))["vectors"]
    if not vectors:
        sys.exit(f"{path}: no vectors to check")
    for v in vectors:
        print(f"ok v{version}", build(v, version))
