#!/usr/bin/env python3
"""Logs in over FTPS (ftplib.FTP_TLS, explicit AUTH TLS) and holds the session until stdin
closes, for tests/shared_limits.rs. Prints one JSON line after the login: {"ok": true} or the
server's refusal; then, when stdin closes, QUITs."""

import argparse
import ftplib
import json
import ssl
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--cafile", required=True)
    a = p.parse_args()
    ctx = ssl.create_default_context(cafile=a.cafile)
    ftp = ftplib.FTP_TLS(context=ctx, timeout=20)
    try:
        ftp.connect("127.0.0.1", a.port)
        ftp.login(a.user, a.password)
    except ftplib.all_errors as e:
        print(json.dumps({"ok": False, "error": str(e)}), flush=True)
        return
    print(json.dumps({"ok": True}), flush=True)
    sys.stdin.read()
    try:
        ftp.quit()
    except ftplib.all_errors:
        pass


if __name__ == "__main__":
    main()
