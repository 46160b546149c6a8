"""Echoing "serial ports" for benchmarks: one process, any number of them.

Stands in for the QEMU guests a benchmark cannot boot ten thousand of:
every connection gets its bytes echoed back, as a shell with echo on
would, and the farm itself stays out of the proxy's measurements.

    python tests/harness/guest_farm.py ADDRESS PORT [PORT...]
"""

import asyncio
import resource
import signal
import sys


class SerialEcho(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def serve(address, ports):
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(SerialEcho, address, port,
                                        backlog=4096) for port in ports]
    print('listening on %s:%s' % (address, ','.join(map(str, ports))),
          flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main():
    # The world stops its guests with SIGTERM: a clean stop, status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200000, 200000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(sys.argv[1], [int(p) for p in sys.argv[2:]]))


if __name__ == '__main__':
    main()
