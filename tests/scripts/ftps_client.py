#!/usr/bin/env python3
"""FTPS client for tests/ftps.rs: Python's ftplib.FTP_TLS (the standard library client partner
scripts use) and raw sockets for bad input. Prints one JSON object; exits 0 unless the scenario
itself could not run."""

import argparse
import ftplib
import io
import json
import os
import socket
import ssl
import sys
import time


class ImplicitFTP_TLS(ftplib.FTP_TLS):
    """Implicit FTPS: ftplib has no such mode, so the socket is wrapped at connect, before
    the greeting. login() then sees a TLS socket and sends no AUTH TLS."""

    def connect(self, host="", port=0, timeout=-999, source_address=None):
        self.host, self.port = host, port
        raw = socket.create_connection((host, port), self.timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


class ResumingFTP_TLS(ftplib.FTP_TLS):
    """What lftp and curl do and ftplib does not: the data connection resumes the control
    connection's TLS session."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def context(a):
    ctx = ssl.create_default_context(cafile=a.cafile)
    if a.certfile:
        ctx.load_cert_chain(a.certfile, a.keyfile)
    return ctx


def client(a):
    ctx = context(a)
    cls = ImplicitFTP_TLS if a.implicit else ResumingFTP_TLS if a.resume else ftplib.FTP_TLS
    ftp = cls(context=ctx, timeout=20)
    ftp.connect("127.0.0.1", a.port)
    return ftp


def connect(a):
    ftp = client(a)
    ftp.login(a.user, a.password)  # sends AUTH TLS first (explicit)
    ftp.prot_p()
    return ftp


def cert_login(a):
    """Log in with the client certificate (--certfile): the USER reply, then a small upload
    and listing if logged in."""
    ftp = client(a)
    if not a.implicit:
        ftp.auth()
    out = {}
    try:
        out["user"] = ftp.sendcmd(f"USER {a.user}")
    except ftplib.Error as e:
        out["user"] = str(e)
        return out
    if out["user"].startswith("331"):
        try:
            out["pass"] = ftp.sendcmd(f"PASS {a.password}")
        except ftplib.Error as e:
            out["pass"] = str(e)
            return out
    ftp.prot_p()
    out["stor"] = ftp.storbinary(f"STOR {a.name}", io.BytesIO(b"by certificate"))
    out["nlst"] = ftp.nlst()
    out["quit"] = ftp.quit()
    return out


def handshake(a):
    """Only the TLS handshake (with --certfile), then QUIT: reports whether it completed."""
    try:
        ftp = client(a)
        if not a.implicit:
            ftp.auth()
        out = {"handshake": "ok", "noop": ftp.voidcmd("NOOP")}
        ftp.quit()
    except (ssl.SSLError, OSError, EOFError, ftplib.Error) as e:
        out = {"handshake": f"{type(e).__name__}: {e}"}
    return out


def plain_to_implicit(a):
    """Plaintext FTP to the implicit port: no greeting, the connection just closes."""
    s = socket.create_connection(("127.0.0.1", a.port), timeout=20)
    s.sendall(b"USER bob\r\nPASS x\r\n" + b"\x00" * 4096)
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    return {"closed": True, "got_greeting": b"220" in got, "first": got[:1].hex()}


def data_refused(a):
    """NLST and STOR whose data connections the server may refuse after the TLS handshake
    (require_ssl_reuse): the control replies to each, and whether the session goes on."""
    ftp = connect(a)
    out = {}
    for key, run in [
        ("nlst", lambda: ftp.retrlines("NLST", lambda _: None)),
        ("stor", lambda: ftp.storbinary(f"STOR {a.name}", io.BytesIO(b"z" * 100000))),
    ]:
        try:
            out[key] = run()
        except (ftplib.Error, ssl.SSLError, OSError, EOFError) as e:
            out[key + "_error"] = f"{type(e).__name__}: {e}"
            if not isinstance(e, ftplib.Error):
                try:
                    out[key] = ftp.getresp()
                except ftplib.Error as e2:
                    out[key] = str(e2)
    out["noop"] = ftp.voidcmd("NOOP")
    ftp.quit()
    return out


def foreign_session(a):
    """Client B's data connection resumes client A's TLS session (same context, so Python
    allows it): the server must tell the two apart."""
    ctx = context(a)
    ftp_a = ftplib.FTP_TLS(context=ctx, timeout=20)
    ftp_a.connect("127.0.0.1", a.port)
    ftp_a.login(a.user, a.password)
    ftp_a.prot_p()
    ftp_a.voidcmd("NOOP")  # reads the TLS 1.3 tickets that follow the handshake
    stolen = ftp_a.sock.session
    ftp_b = ftplib.FTP_TLS(context=ctx, timeout=20)
    ftp_b.connect("127.0.0.1", a.port)
    ftp_b.login(a.user, a.password)
    ftp_b.prot_p()
    raw, _ = ftplib.FTP.ntransfercmd(ftp_b, "NLST")
    out = {"stolen_session": stolen is not None}
    try:
        conn = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=stolen)
        out["reused"] = conn.session_reused
        try:
            conn.recv(100)
        except (ssl.SSLError, OSError):
            pass
        conn.close()
    except (ssl.SSLError, OSError) as e:
        out["handshake"] = str(e)
    try:
        out["reply"] = ftp_b.getresp()
    except ftplib.Error as e:
        out["reply"] = str(e)
    out["noop"] = ftp_b.voidcmd("NOOP")
    ftp_a.quit()
    ftp_b.quit()
    return out


def abort_listing(a):
    """LIST/MLSD (--command) of a large directory (--name), with ABOR sent as soon as the 150
    arrives (before the data connection's TLS handshake, so it is waiting when the listing
    starts): the listing must stop (426, then 226) and the session go on. Reports the listing
    bytes that arrived anyway."""
    ftp = connect(a)
    host, port = ftp.makepasv()
    s = socket.create_connection((host, port), timeout=20)
    out = {"start": ftp.sendcmd(f"{a.command} {a.name}")}
    ftp.sock.sendall(b"ABOR\r\n")
    conn = ftp.context.wrap_socket(s, server_hostname="127.0.0.1")
    got = 0
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += len(chunk)
    except (ssl.SSLError, OSError):
        pass
    conn.close()
    out["received"] = got
    out["abort"] = ftp.getline()
    out["after"] = ftp.getline()
    out["noop"] = ftp.voidcmd("NOOP")
    out["pwd"] = ftp.pwd()
    out["nlst"] = ftp.nlst()
    ftp.quit()
    return out


def active_mode(a):
    """PORT and EPRT naming a third-party address (--host, --third-port), before and after
    login, each followed by a transfer: every reply, in order."""
    h, p = a.host, a.third_port
    port_cmd = "PORT " + ",".join(h.split(".") + [str(p >> 8), str(p & 0xFF)])
    eprt_cmd = f"EPRT |1|{h}|{p}|"
    s = socket.create_connection(("127.0.0.1", a.port), timeout=20)
    out = {"greeting": lines_of(s).decode().strip()}
    for cmd in [port_cmd, eprt_cmd]:
        s.sendall(cmd.encode() + b"\r\n")
        out["plain " + cmd.split()[0]] = lines_of(s).decode().strip()
    s.close()
    ftp = connect(a)
    for cmd in [port_cmd, eprt_cmd]:
        for c in [cmd, f"STOR {a.name}", "LIST"]:
            try:
                out[f"tls {cmd.split()[0]} {c.split()[0]}"] = ftp.sendcmd(c)
            except ftplib.Error as e:
                out[f"tls {cmd.split()[0]} {c.split()[0]}"] = str(e)
    out["noop"] = ftp.voidcmd("NOOP")
    ftp.quit()
    return out


def gated_stor(a):
    """STOR half of --local, print {"holding": true}, wait (bounded) for the --gate file, send
    the rest and close cleanly: prints the reply. With --hold N, never finish: sleep N s."""
    data = open(a.local, "rb").read()
    ftp = connect(a)
    conn = ftp.transfercmd(f"STOR {a.name}")
    conn.sendall(data[: len(data) // 2])
    print(json.dumps({"holding": True}), flush=True)
    deadline = time.monotonic() + (a.hold or 120)
    while time.monotonic() < deadline and not (a.gate and os.path.exists(a.gate)):
        time.sleep(0.05)
    if a.hold:
        return {"held": True}
    try:
        conn.sendall(data[len(data) // 2 :])
        conn.unwrap().close()
        return {"ok": True, "reply": ftp.voidresp()}
    except (ftplib.Error, ssl.SSLError, OSError, EOFError) as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def auth_on_implicit(a):
    """AUTH TLS on a connection that is TLS already: refused, and the session goes on."""
    ftp = client(a)
    out = {"welcome": ftp.welcome}
    try:
        out["auth"] = ftp.sendcmd("AUTH TLS")
    except ftplib.Error as e:
        out["auth"] = str(e)
    out["login"] = ftp.login(a.user, a.password)
    ftp.prot_p()
    out["nlst"] = ftp.nlst()
    ftp.quit()
    return out


def roundtrip(a):
    """put, ls, get, size, rename, mlsd, delete: every call must finish without an exception."""
    data = open(a.local, "rb").read()
    ftp = connect(a)
    out = {"stor": ftp.storbinary(f"STOR {a.name}", io.BytesIO(data))}
    out["nlst"] = ftp.nlst()
    got = io.BytesIO()
    out["retr"] = ftp.retrbinary(f"RETR {a.name}", got.write)
    out["same"] = got.getvalue() == data
    out["size"] = ftp.size(a.name)
    lines = []
    ftp.retrlines("LIST", lines.append)
    out["list"] = lines
    if a.rename:
        out["rename"] = ftp.rename(a.name, a.rename)
        out["mlsd"] = [n for n, _ in ftp.mlsd()]
        if a.delete:
            out["delete"] = ftp.delete(a.rename)
            out["after_delete"] = ftp.nlst()
    out["quit"] = ftp.quit()
    return out


def put(a):
    ftp = connect(a)
    out = {"stor": ftp.storbinary(f"STOR {a.name}", open(a.local, "rb"))}
    out["quit"] = ftp.quit()
    return out


def get(a):
    ftp = connect(a)
    with open(a.local, "wb") as f:
        out = {"retr": ftp.retrbinary(f"RETR {a.name}", f.write)}
    out["quit"] = ftp.quit()
    return out


def truncate(a):
    """STOR, send some bytes, then end the data connection with a TCP shutdown and no TLS
    close_notify; report the server's reply to the STOR."""
    ftp = connect(a)
    conn = ftp.transfercmd(f"STOR {a.name}")
    conn.sendall(b"x" * (256 * 1024))
    # SSLSocket.shutdown drops the TLS layer and shuts the TCP socket: no close_notify.
    conn.shutdown(socket.SHUT_RDWR)
    conn.close()
    try:
        reply = ftp.voidresp()
    except ftplib.Error as e:
        reply = str(e)
    out = {"reply": reply, "nlst": ftp.nlst()}
    ftp.quit()
    return out


def rest_stor(a):
    ftp = connect(a)
    out = {"rest": ftp.sendcmd("REST 10")}
    try:
        out["stor"] = ftp.storbinary(f"STOR {a.name}", io.BytesIO(b"abc"))
    except ftplib.Error as e:
        out["stor"] = str(e)
    try:
        out["appe"] = ftp.storbinary(f"APPE {a.name}", io.BytesIO(b"abc"))
    except ftplib.Error as e:
        out["appe"] = str(e)
    try:
        out["port"] = ftp.sendcmd("PORT 10,9,8,7,4,1")
    except ftplib.Error as e:
        out["port"] = str(e)
    ftp.quit()
    return out


def no_prot(a):
    """Logged in over TLS but without PROT P: transfers are refused."""
    ftp = client(a)
    ftp.login(a.user, a.password)
    out = {}
    try:
        out["stor"] = ftp.storbinary(f"STOR {a.name}", io.BytesIO(b"abc"))
    except ftplib.Error as e:
        out["stor"] = str(e)
    ftp.quit()
    return out


def pasv_port(ftp):
    return ftp.makepasv()[1]


def other_ip(a):
    """A data connection from 127.0.0.2 is dropped unheard; the real one from 127.0.0.1 then
    carries the upload."""
    ftp = connect(a)
    port = pasv_port(ftp)
    thief = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=("127.0.0.2", 0))
    out = {"stor": ftp.sendcmd(f"STOR {a.name}")}
    try:
        out["thief_got"] = len(thief.recv(100))
    except OSError as e:
        out["thief_got"] = str(e)
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    conn = ftp.context.wrap_socket(raw, server_hostname="127.0.0.1")
    conn.sendall(b"from the right address")
    conn.unwrap().close()
    out["done"] = ftp.voidresp()
    got = io.BytesIO()
    ftp.retrbinary(f"RETR {a.name}", got.write)
    out["content"] = got.getvalue().decode()
    ftp.quit()
    return out


def garbage(a):
    """Bytes that are not a TLS handshake on the data connection: 425, and the session goes on."""
    ftp = connect(a)
    port = pasv_port(ftp)
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    out = {"stor": ftp.sendcmd(f"STOR {a.name}")}
    raw.sendall(b"GET / HTTP/1.0\r\n\r\n" * 64)
    try:
        raw.recv(100)
    except OSError:
        pass
    raw.close()
    try:
        out["reply"] = ftp.voidresp()
    except ftplib.Error as e:
        out["reply"] = str(e)
    out["noop"] = ftp.voidcmd("NOOP")
    out["nlst"] = ftp.nlst()
    ftp.quit()
    return out


def abort(a):
    """ABOR in the middle of a STOR: 426 for the transfer, 226 for the ABOR, nothing stored."""
    ftp = connect(a)
    conn = ftp.transfercmd(f"STOR {a.name}")
    conn.sendall(b"y" * (128 * 1024))
    out = {"abort": ftp.abort()}
    out["after"] = ftp.getresp()
    conn.close()
    out["noop"] = ftp.voidcmd("NOOP")
    out["nlst"] = ftp.nlst()
    ftp.quit()
    return out


def lines_of(sock):
    buf = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return buf
        buf += chunk
        lines = buf.split(b"\r\n")
        last = lines[-2] if len(lines) > 1 else b""
        if len(last) >= 4 and last[3:4] == b" ":
            return buf


def plaintext(a):
    """Raw socket, no TLS: every command except AUTH/FEAT/NOOP/QUIT is refused."""
    s = socket.create_connection(("127.0.0.1", a.port), timeout=20)
    out = {"greeting": lines_of(s).decode()}
    for cmd in ["USER bob", f"PASS {a.password}", "PASV", "LIST", "STOR x"]:
        s.sendall(cmd.encode() + b"\r\n")
        out[cmd.split()[0]] = lines_of(s).decode().strip()
    s.sendall(b"X" * 10000 + b"\r\n")
    out["long"] = lines_of(s).decode().strip()
    for _ in range(2):
        s.sendall(b"X" * 10000 + b"\r\n")
        out["long_last"] = lines_of(s).decode().strip()
    out["closed"] = s.recv(100) == b""
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="bob")
    p.add_argument("--password", default="")
    p.add_argument("--cafile")
    p.add_argument("--local")
    p.add_argument("--name", default="f.bin")
    p.add_argument("--rename")
    p.add_argument("--delete", action="store_true")
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    p.add_argument("--implicit", action="store_true")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--command", default="MLSD")
    p.add_argument("--host", default="127.0.0.3")
    p.add_argument("--third-port", type=int, default=0)
    p.add_argument("--gate")
    p.add_argument("--hold", type=int, default=0)
    a = p.parse_args()
    fn = {
        "roundtrip": roundtrip,
        "put": put,
        "get": get,
        "truncate": truncate,
        "rest_stor": rest_stor,
        "no_prot": no_prot,
        "plaintext": plaintext,
        "other_ip": other_ip,
        "garbage": garbage,
        "abort": abort,
        "cert_login": cert_login,
        "handshake": handshake,
        "plain_to_implicit": plain_to_implicit,
        "auth_on_implicit": auth_on_implicit,
        "data_refused": data_refused,
        "abort_listing": abort_listing,
        "active_mode": active_mode,
        "gated_stor": gated_stor,
        "foreign_session": foreign_session,
    }[a.scenario]
    try:
        print(json.dumps(fn(a)))
    except Exception as e:  # the test shows what failed
        print(json.dumps({"exception": f"{type(e).__name__}: {e}"}))
        sys.exit(1)


if __name__ == "__main__":
    main()
