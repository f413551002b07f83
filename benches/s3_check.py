"""Just enough S3 to check what a benchmark left in a bucket (benches/scale.py), with the standard
library only: ListObjectsV2, ListMultipartUploads and GetObject, path-style, signed with SigV4."""
import datetime
import hashlib
import hmac
import shutil
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

MIB = 1 << 20


class S3:
    """Just enough of an S3 client to check what landed: path-style GETs signed with SigV4, on
    Garage's plain port (the check is not part of what is measured)."""

    def __init__(self, port, key_id, secret, region="eu-central-1"):
        self.host, self.key_id, self.secret, self.region = f"127.0.0.1:{port}", key_id, secret, region

    def _get(self, path, query):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        q = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                     for k, v in sorted(query.items()))
        empty = hashlib.sha256(b"").hexdigest()
        headers = {"host": self.host, "x-amz-content-sha256": empty, "x-amz-date": now}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(["GET", urllib.parse.quote(path, safe="/-_.~"), q,
                               "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, empty])
        scope = f"{now[:8]}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", now, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("AWS4" + self.secret).encode()
        for part in (now[:8], self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.key_id}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={sig}")
        url = f"http://{self.host}{urllib.parse.quote(path, safe='/-_.~')}" + (f"?{q}" if q else "")
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)

    def objects(self, bucket, prefix):
        """(key, size) of every object under prefix (ListObjectsV2, all pages)."""
        out, token = [], None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            with self._get(f"/{bucket}", q) as r:
                root = ET.fromstring(r.read())
            out += [(c.findtext("{*}Key"), int(c.findtext("{*}Size"))) for c in root.findall("{*}Contents")]
            token = root.findtext("{*}NextContinuationToken")
            if root.findtext("{*}IsTruncated") != "true" or not token:
                return out

    def uploads(self, bucket):
        """Keys of the multipart uploads in progress (ListMultipartUploads)."""
        with self._get(f"/{bucket}", {"uploads": ""}) as r:
            root = ET.fromstring(r.read())
        return [u.findtext("{*}Key") for u in root.findall("{*}Upload")]

    def download(self, bucket, key, dest):
        with self._get(f"/{bucket}/{key}", {}) as r, open(dest, "wb") as f:
            shutil.copyfileobj(r, f, 8 * MIB)


def sealed_len(header_len, plaintext):
    """docs/object-format.md §5: H + P + 16 per 64 KiB segment (at least one)."""
    return header_len + plaintext + 16 * max(1, -(-plaintext // 65536))
