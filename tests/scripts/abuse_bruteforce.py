#!/usr/bin/env python3
"""Login attempts (paramiko) from chosen loopback sources, one fresh connection each, in the
order given: the brute-force attacks of the abuse suite.

Usage: abuse_bruteforce.py --port PORT --plan JSON
where JSON is a list of {"src": "127.0.0.9", "user": "bob", "password": "..."} or
{"src": ..., "user": ..., "key": "/path/to/ed25519"}.

Prints {"results": [{"ok": true|false, "error": "..."}]}, one per attempt; exit code 0 unless
the script itself broke."""
import argparse
import json
import socket

import paramiko


def attempt(port, a):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(a["src"], 0))
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=30)
        if "password" in a:
            t.auth_password(a["user"], a["password"])
        else:
            t.auth_publickey(a["user"], paramiko.Ed25519Key.from_private_key_file(a["key"]))
        return {"ok": t.is_authenticated()}
    except paramiko.AuthenticationException as e:
        return {"ok": False, "error": str(e), "auth_failed": True}
    except (paramiko.SSHException, OSError, EOFError) as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        t.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--plan", required=True)
    args = p.parse_args()
    results = [attempt(args.port, a) for a in json.loads(args.plan)]
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
