"""Echo server for the CPython scenario of scripts/bench.sh: the standard library's
socketserver.ThreadingTCPServer, one thread per connection, blocking recv/sendall.

    python3 echo_server.py threads|gevent [SECONDS]

threads: run as is (natively, or under the shim with LD_PRELOAD: the same script either way).
gevent:  gevent.monkey.patch_all() first, so the same ThreadingTCPServer runs its threads as greenlets.
Prints "listening PORT" once it accepts; exits by itself after SECONDS (default 600) or on SIGTERM.
"""
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "threads"
if MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()
elif MODE != "threads":
    sys.exit("usage: echo_server.py threads|gevent [SECONDS]")

import os
import resource
import signal
import socket
import socketserver
import threading

SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 600


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = s.recv(16384)
            if not data:
                return
            s.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default of 5 would drop SYNs when thousands of clients connect at once.
    request_queue_size = 65535


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The bench gives every run a time bound; os._exit also skips joining thousands of handler threads.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Timer(SECONDS, lambda: os._exit(0)).start()
    srv = Server(("127.0.0.1", 0), Echo)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


main()
