# socketserver.ThreadingTCPServer line-echo server (run by python_servers.sh, under the shim in shim modes).
# Usage: python3 python_echo_server.py PORTFILE
# Binds 127.0.0.1:0, writes the port to PORTFILE (atomically), serves one thread per connection.
# Protocol, per line: "ECHO <payload>" -> "<len> <payload reversed>"; "STATS" -> "<connections> <lines>";
# "SHUTDOWN" -> "BYE" and the server stops, printing its counters and exiting 0.
import os
import socketserver
import sys
import threading

lock = threading.Lock()
counters = {"connections": 0, "lines": 0}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        with lock:
            counters["connections"] += 1
        for line in self.rfile:
            line = line.rstrip(b"\n")
            if line.startswith(b"ECHO "):
                payload = line[5:]
                with lock:
                    counters["lines"] += 1
                self.wfile.write(b"%d %s\n" % (len(payload), payload[::-1]))
            elif line == b"STATS":
                with lock:
                    self.wfile.write(b"%d %d\n" % (counters["connections"], counters["lines"]))
            elif line == b"SHUTDOWN":
                self.wfile.write(b"BYE\n")
                # shutdown() waits for serve_forever to return: call it from another thread.
                threading.Thread(target=self.server.shutdown).start()
                return
            else:
                self.wfile.write(b"ERR\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


def main():
    with Server(("127.0.0.1", 0), Handler) as srv:
        tmp = sys.argv[1] + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, sys.argv[1])
        srv.serve_forever(poll_interval=0.2)
    print("echo server stopped: connections=%d lines=%d" % (counters["connections"], counters["lines"]))


main()
