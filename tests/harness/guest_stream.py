"""Bulk-data "serial ports" for the throughput benchmark.

Stands in for a guest that reads or writes as fast as its serial port
lets it. Threads and blocking sockets, so that the guest side costs as
little CPU as it can and stays out of the proxies' figures.

    python tests/harness/guest_stream.py ADDRESS PORT [PORT...]

A connection starts by echoing lines, so a client can see past whatever
history a proxy replays on connect, until a line is a command:

    sink ID           count every byte that follows, as sink ID
    source N SIZE     write N bytes in SIZE-byte writes, as fast as the
                      socket takes them
    wait ID N STALL DEADLINE
                      (on a connection of its own, straight to the guest)
                      answer "COUNT FIRST LAST" once sink ID has counted N
                      bytes, or when no byte has come for STALL seconds or
                      the clock passes DEADLINE

Times are time.monotonic() (CLOCK_MONOTONIC: one clock for every process
of the machine); FIRST and LAST are those of the sink's first and last
byte, -1 before any.
"""

import signal
import socket
import sys
import threading
import time


class Sink:
    def __init__(self):
        self.count = 0
        self.first = self.last = -1.0


SINKS = {}
CHANGED = threading.Condition()


def sink(conn, ident, early):
    record = Sink()
    with CHANGED:
        SINKS[ident] = record
        CHANGED.notify_all()
    buf = bytearray(1 << 20)
    n = len(early)
    while True:
        if n:
            now = time.monotonic()
            with CHANGED:
                if record.count == 0:
                    record.first = now
                record.count += n
                record.last = now
                CHANGED.notify_all()
        n = conn.recv_into(buf)
        if not n:
            return


def source(conn, total, size):
    chunk = memoryview(b'x' * size)
    for _ in range(total // size):
        conn.sendall(chunk)
    if total % size:
        conn.sendall(chunk[:total % size])


def wait(ident, total, stall, deadline):
    started = time.monotonic()
    with CHANGED:
        while True:
            record = SINKS.get(ident, Sink())
            now = time.monotonic()
            quiet = now - max(started, record.last)
            if record.count >= total or now >= deadline or quiet >= stall:
                return '%d %r %r\n' % (record.count, record.first,
                                       record.last)
            CHANGED.wait(min(stall - quiet, deadline - now))


def serve(conn):
    with conn:
        pending = b''
        while True:
            data = conn.recv(65536)
            if not data:
                return
            pending += data
            while b'\n' in pending:
                line, pending = pending.split(b'\n', 1)
                words = line.decode(errors='replace').split()
                if words[:1] == ['sink'] and len(words) == 2:
                    sink(conn, words[1], pending)
                    return
                elif words[:1] == ['source'] and len(words) == 3:
                    source(conn, int(words[1]), int(words[2]))
                elif words[:1] == ['wait'] and len(words) == 5:
                    conn.sendall(wait(words[1], int(words[2]),
                                      float(words[3]),
                                      float(words[4])).encode())
                else:
                    conn.sendall(line + b'\n')


def serve_connection(conn):
    try:
        serve(conn)
    except OSError:
        pass    # The client went away mid-transfer: a stalled cell.


def accept(listener):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn,),
                         daemon=True).start()


def main():
    # The world stops its guests with SIGTERM: a clean stop, status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    address, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    threads = []
    for port in ports:
        listener = socket.create_server((address, port), backlog=128)
        threads.append(threading.Thread(target=accept, args=(listener,),
                                        daemon=True))
    for thread in threads:
        thread.start()
    print('listening on %s:%s' % (address, ','.join(map(str, ports))),
          flush=True)
    for thread in threads:
        thread.join()


if __name__ == '__main__':
    main()
