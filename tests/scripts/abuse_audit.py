#!/usr/bin/env python3
"""Login flood for tests/abuse_audit.rs: many wrong-password attempts from one source address
(a loopback address of its own, so that the test's well-behaved client on 127.0.0.1 is another
source), over several connections at once, each connection trying once.

Prints one JSON object: attempts sent, attempts answered with a refusal, connections made and
connections the gateway refused, and the SHA-256 of the user name (for the long-name attack)."""
import argparse
import hashlib
import json
import socket
import threading
import time

import paramiko

# After a failed password, russh no longer offers the method on that connection (a second
# attempt goes unanswered): one attempt per connection, as the measured attack did.
PER_CONNECTION = 1


class Budget:
    def __init__(self, n):
        self.left = n
        self.lock = threading.Lock()
        self.sent = 0
        self.answered = 0
        self.connections = 0
        self.refused = 0

    def take(self):
        with self.lock:
            if self.left == 0:
                return False
            self.left -= 1
            self.sent += 1
            return True

    def add(self, field):
        with self.lock:
            setattr(self, field, getattr(self, field) + 1)


def user_name(a, i):
    if a.user_len:
        return "A" * a.user_len
    return f"{a.user}{i}"


def worker(a, budget, deadline, seq):
    i = 0
    while time.monotonic() < deadline:
        with budget.lock:
            if budget.left == 0:
                return
        try:
            sock = socket.create_connection(
                (a.host, a.port), timeout=20, source_address=(a.source, 0)
            )
            t = paramiko.Transport(sock)
            t.auth_timeout = 20
            t.start_client(timeout=20)
        except (OSError, paramiko.SSHException, EOFError):
            # A cap on unauthenticated connections per source may refuse some: try again.
            budget.add("refused")
            time.sleep(0.05)
            continue
        budget.add("connections")
        try:
            for _ in range(PER_CONNECTION):
                if not budget.take():
                    return
                i += 1
                try:
                    t.auth_password(user_name(a, seq * 1_000_000 + i), "wrong password")
                except paramiko.AuthenticationException:
                    budget.add("answered")
                except (OSError, paramiko.SSHException, EOFError):
                    break
        finally:
            t.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", required=True, help="local address to connect from")
    p.add_argument("--attempts", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--user", default="ghost", help="prefix of the user names tried")
    p.add_argument("--user-len", type=int, default=0, help="try one name of this many characters")
    p.add_argument("--max-secs", type=float, default=50.0)
    a = p.parse_args()
    budget = Budget(a.attempts)
    deadline = time.monotonic() + a.max_secs
    threads = [
        threading.Thread(target=worker, args=(a, budget, deadline, n), daemon=True)
        for n in range(a.concurrency)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = {
        "sent": budget.sent,
        "answered": budget.answered,
        "connections": budget.connections,
        "refused_connections": budget.refused,
    }
    if a.user_len:
        out["user_sha256"] = hashlib.sha256(user_name(a, 0).encode()).hexdigest()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
