#!/usr/bin/env python3
"""A load balancer and its clients for tests/proxy_protocol.rs: each attempt opens a TCP
connection from a chosen loopback source (the "balancer"), sends a hand-built PROXY protocol
header (struct.pack, not a library), then speaks SSH (paramiko.Transport over that socket) or
FTPS (ftplib.FTP_TLS over that socket, explicit AUTH TLS or implicit TLS).

Usage: proxy_client.py --port PORT --plan JSON
where JSON is a list of attempts:
  {"protocol": "sftp" | "ftps" | "ftps-implicit",
   "src": "127.0.0.2",                      # the balancer's (socket's) address
   "header": "v4" | "v6" | "local" | "v1" | "garbage" | "none" | "unspec" | "udp" | "silent",
   "client": "203.0.113.7",                 # the header's source address (v4/v6/udp)
   "user": "bob", "password": "..." | "key": "/path" [, "cert": "/path-cert.pub"],
   "put": ["/local/file", "remote-name"],   # optional upload after login
   "cafile": "/ca.pem"}                     # ftps
Prints {"results": [{"ok": bool, "error": "...", "auth_failed": bool}]}, one per attempt; exit
code 0 unless the script itself broke."""
import argparse
import ftplib
import json
import socket
import ssl
import struct

import paramiko

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command, family, body):
    """Version 2 in the high nibble, the command (0 LOCAL, 1 PROXY) in the low one."""
    return SIGNATURE + struct.pack("!BBH", 0x20 | command, family, len(body)) + body


def header(a, server_port):
    kind = a["header"]
    client = a.get("client", "203.0.113.7")
    if kind == "v4":
        body = socket.inet_aton(client) + socket.inet_aton("127.0.0.1")
        return v2(1, 0x11, body + struct.pack("!HH", 40000, server_port))
    if kind == "v6":
        body = socket.inet_pton(socket.AF_INET6, client) + socket.inet_pton(socket.AF_INET6, "::1")
        return v2(1, 0x21, body + struct.pack("!HH", 40000, server_port))
    if kind == "udp":
        body = socket.inet_aton(client) + socket.inet_aton("127.0.0.1")
        return v2(1, 0x12, body + struct.pack("!HH", 40000, server_port))
    if kind == "unspec":
        return v2(1, 0x00, b"")
    if kind == "local":
        return v2(0, 0x00, b"")
    if kind == "v1":
        return f"PROXY TCP4 {client} 127.0.0.1 40000 {server_port}\r\n".encode()
    if kind == "garbage":
        return b"\x00\x01\x02\x03 this is not a PROXY header \xff\xfe\r\n"
    return b""  # none, silent


def connect(a, port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(a["src"], 0))
    data = header(a, port)
    if data:
        sock.sendall(data)
    return sock


def sftp(a, port):
    sock = connect(a, port)
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=30)
        if "password" in a:
            t.auth_password(a["user"], a["password"])
        else:
            key = paramiko.Ed25519Key.from_private_key_file(a["key"])
            if "cert" in a:
                key.load_certificate(a["cert"])
            t.auth_publickey(a["user"], key)
        if not t.is_authenticated():
            return {"ok": False, "error": "not authenticated"}
        if "put" in a:
            sftp = paramiko.SFTPClient.from_transport(t)
            sftp.put(a["put"][0], "/" + a["put"][1])
            sftp.close()
        return {"ok": True}
    except paramiko.AuthenticationException as e:
        return {"ok": False, "error": str(e), "auth_failed": True}
    except (paramiko.SSHException, OSError, EOFError) as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        t.close()


class Balanced(ftplib.FTP_TLS):
    """ftplib over a socket already connected (and already past its PROXY header). Data
    connections come from the balancer's address too, as if it forwarded them."""

    def __init__(self, sock, implicit, **kw):
        super().__init__(**kw)
        self.pre = sock
        self.implicit = implicit

    def connect(self, host="", port=0, timeout=-999, source_address=None):
        self.host, self.port = host, port
        self.af = self.pre.family
        self.sock = self.context.wrap_socket(self.pre, server_hostname=host) if self.implicit else self.pre
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def ftps(a, port, implicit):
    sock = connect(a, port)
    ctx = ssl.create_default_context(cafile=a["cafile"])
    ftp = Balanced(sock, implicit, context=ctx, timeout=20, source_address=(a["src"], 0))
    try:
        ftp.connect("127.0.0.1", port)
        ftp.login(a["user"], a["password"])  # AUTH TLS first unless the socket is TLS already
        ftp.prot_p()
        if "put" in a:
            with open(a["put"][0], "rb") as f:
                ftp.storbinary(f"STOR {a['put'][1]}", f)
        ftp.quit()
        return {"ok": True}
    except ftplib.error_perm as e:
        return {"ok": False, "error": str(e), "auth_failed": str(e).startswith("530")}
    except (ftplib.Error, OSError, EOFError, ssl.SSLError) as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        ftp.close()


def attempt(port, a):
    if a.get("header") == "silent":
        # A balancer that connects and never sends: the gateway must close it by itself.
        sock = connect(a, port)
        sock.settimeout(30)
        try:
            got = sock.recv(100)
            return {"ok": False, "error": f"closed by the gateway, after {len(got)} bytes"}
        except OSError as e:
            return {"ok": False, "error": f"{type(e).__name__}: {e}"}
        finally:
            sock.close()
    if a["protocol"] == "sftp":
        return sftp(a, port)
    return ftps(a, port, a["protocol"] == "ftps-implicit")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--plan", required=True)
    args = p.parse_args()
    results = [attempt(args.port, a) for a in json.loads(args.plan)]
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
