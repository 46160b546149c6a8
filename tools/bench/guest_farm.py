"""Echoing "serial ports" for benchmarks: one process, any number of them.

Stands in for the QEMU guests a benchmark cannot boot ten thousand of:
every connection gets its bytes echoed back, as a shell with echo on
would, and the farm itself stays out of the proxy's measurements.

    python tools/bench/guest_farm.py ADDRESS PORT
"""

import asyncio
import resource
import sys


class SerialEcho(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def serve(address, port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SerialEcho, address, port,
                                      backlog=4096)
    print('listening on %s:%d' % (address, port), flush=True)
    async with server:
        await server.serve_forever()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200000, 200000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))


if __name__ == '__main__':
    main()
