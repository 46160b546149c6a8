"""The least a proxy can do: relay bytes between two TCP sockets.

For the throughput benchmark: no websocket, no event loop, no copy but
the kernel's and one buffer per direction; a thread per direction with
blocking sockets. What a path through it gets, beside direct TCP, is the
floor any user-space proxy starts from on the machine: the data crosses
the kernel twice more and one more process needs a core.

    python tools/bench/tcp_relay.py LISTEN_PORT GUEST_ADDRESS GUEST_PORT
"""

import signal
import socket
import sys
import threading

BUFFER_BYTES = 256 * 1024


def pump(source, sink):
    buf = bytearray(BUFFER_BYTES)
    view = memoryview(buf)
    try:
        while True:
            count = source.recv_into(buf)
            if not count:
                break
            sink.sendall(view[:count])
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass    # One side went away: the cell is over.


def relay(client, guest_address):
    with client, socket.create_connection(guest_address) as guest:
        back = threading.Thread(target=pump, args=(guest, client),
                                daemon=True)
        back.start()
        pump(client, guest)
        back.join()


def main():
    # Stopped by the bench's world like its services: status 0 on SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port, guest_address = int(sys.argv[1]), (sys.argv[2], int(sys.argv[3]))
    listener = socket.create_server(('127.0.0.1', port), backlog=128)
    print('listening on %d' % port, flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=relay, args=(client, guest_address),
                         daemon=True).start()


if __name__ == '__main__':
    main()
