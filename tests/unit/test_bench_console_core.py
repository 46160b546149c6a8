"""The in-memory console core benchmark still drives both front ends to
an open session and through their hot paths (it runs on every change,
so it must not rot)."""

from serialproxy.proxy import console_core
from serialproxy.proxy import session as websocket_session
from tests.unit import base
from tools.bench import console_core as bench


class ConsoleCoreBenchTest(base.TestCase):
    def test_both_front_ends_open(self):
        settings = websocket_session.Settings(idle_timeout=0)
        self.assertIs(console_core.State.OPEN,
                      bench.open_websocket(settings).state)
        self.assertIs(console_core.State.OPEN,
                      bench.open_ssh(settings).state)

    def test_every_path_reaches_the_other_side(self):
        settings = websocket_session.Settings(idle_timeout=0)
        ws = bench.open_websocket(settings)
        ssh = bench.open_ssh(settings)
        for size in bench.SIZES:
            payload = b'x' * size
            to_guest = [a for a in ws.client_data(bench.client_frame(payload))
                        if isinstance(a, console_core.SendToGuest)]
            self.assertEqual(payload, b''.join(
                bytes(c) for a in to_guest for c in a.chunks))
            to_guest = [a for a in ssh.client_data(payload)
                        if isinstance(a, console_core.SendToGuest)]
            self.assertEqual(payload, b''.join(
                bytes(c) for a in to_guest for c in a.chunks))
            for session in (ws, ssh):
                sent = [a for a in session.guest_data(payload)
                        if isinstance(a, console_core.SendToClient)]
                self.assertEqual(size, sum(a.payload_bytes for a in sent))

    def test_measure_gives_a_figure_for_every_row(self):
        rows = bench.measure(rounds=1, sessions=2)
        self.assertEqual(2 + 5 * len(bench.SIZES), len(rows))
        for name, samples in rows:
            self.assertTrue(samples and all(s > 0 for s in samples), name)
