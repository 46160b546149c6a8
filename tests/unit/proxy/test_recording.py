import asyncio
import json
import os
import stat

from serialproxy.proxy import recording
from tests.unit import base
from tests.unit.proxy.fakes import make_proxy
from tests.unit.proxy.fakes import open_websocket
from tests.unit.proxy.fakes import StubConsoleAuth


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def read_cast(path):
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    return lines[0], lines[1:]


class SessionRecorderTest(base.TestCase):
    def test_asciicast_v2_header_and_output_events(self):
        clock = Clock()
        rec = recording.SessionRecorder(self.state_path, 'i-1', 0, 's-1',
                                        10000, clock=clock)
        clock.now += 1.5
        rec.output(b'login: ')
        clock.now += 0.25
        rec.output('h\xe9'.encode()[:2])  # a character split in two reads
        rec.output('h\xe9'.encode()[2:] + b'\r\n')
        rec.close()
        header, events = read_cast(rec.path)
        self.assertEqual((2, 1000, 'instance i-1 serial 0'),
                         (header['version'], header['timestamp'],
                          header['title']))
        self.assertEqual([[1.5, 'o', 'login: '], [1.75, 'o', 'h'],
                          [1.75, 'o', '\xe9\r\n']], events)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(rec.path).st_mode))

    def test_recording_stops_at_its_cap_with_a_marker(self):
        rec = recording.SessionRecorder(self.state_path, 'i-1', 0, 's-2',
                                        2048)
        for _ in range(100):
            rec.output(b'x' * 100)
        rec.close()
        self.assertLessEqual(os.path.getsize(rec.path), 2048 + 200)
        _, events = read_cast(rec.path)
        self.assertEqual(recording.TRUNCATED, events[-1][2])

    def test_prune_deletes_only_old_recordings(self):
        old = recording.SessionRecorder(self.state_path, 'i', 0, 'old', 4096)
        new = recording.SessionRecorder(self.state_path, 'i', 0, 'new', 4096)
        other = os.path.join(self.state_path, 'keep.txt')
        open(other, 'w').close()
        for rec in (old, new):
            rec.close()
        os.utime(old.path, (1000, 1000))
        os.utime(other, (1000, 1000))
        self.assertEqual(1, recording.prune(self.state_path, 86400))
        self.assertFalse(os.path.exists(old.path))
        self.assertTrue(os.path.exists(new.path))
        self.assertTrue(os.path.exists(other))


class Greeter(asyncio.Protocol):
    def connection_made(self, transport):
        transport.write(b'serialproxy-guest# ')


class ProxyRecordingTest(base.TestCase):
    def test_session_is_recorded_under_its_session_id_not_its_token(self):
        record_dir = os.path.join(self.state_path, 'recordings')

        async def scenario():
            loop = asyncio.get_running_loop()
            guest = await loop.create_server(Greeter, '127.0.0.1', 0)
            proxy = make_proxy(
                StubConsoleAuth(guest.sockets[0].getsockname()[1]),
                record_dir=record_dir)
            await proxy.start('127.0.0.1', 0)
            client = await open_websocket(loop, proxy.bound_port)
            await asyncio.sleep(0.3)
            client.close()
            await asyncio.sleep(0.3)
            await proxy.stop()
            guest.close()
        asyncio.run(scenario())
        name, = os.listdir(record_dir)
        self.assertEqual('i-1-0-session-1.cast', name)
        self.assertEqual(0o700, stat.S_IMODE(os.stat(record_dir).st_mode))
        _, events = read_cast(os.path.join(record_dir, name))
        self.assertEqual('serialproxy-guest# ',
                         ''.join(e[2] for e in events))
