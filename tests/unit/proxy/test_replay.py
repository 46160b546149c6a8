import asyncio

from serialproxy.proxy import replay
from tests.unit import base
from tests.unit.proxy.fakes import make_proxy
from tests.unit.proxy.fakes import open_websocket
from tests.unit.proxy.fakes import StubCompute
from tests.unit.proxy.fakes import StubConsoleAuth


class HistoryTest(base.TestCase):
    def test_terminal_queries_are_removed_so_nothing_answers_them(self):
        text = ('serialproxy-guest# \x1b[6nls\r\nbin  etc\r\n'
                'serialproxy-guest# \x1b[6n\x1b[c\x1b[>0c\x1b[5n\x1bZ')
        data = replay.history(text)
        self.assertTrue(data.startswith(replay.BANNER))
        self.assertTrue(data.endswith(replay.END))
        body = data[len(replay.BANNER):-len(replay.END)]
        self.assertEqual(b'serialproxy-guest# ls\r\nbin  etc\r\n'
                         b'serialproxy-guest# ', body)

    def test_colours_and_bare_newlines_survive_as_a_terminal_needs(self):
        body = replay.history('\x1b[32mok\x1b[0m\nnext')[
            len(replay.BANNER):-len(replay.END)]
        self.assertEqual(b'\x1b[32mok\x1b[0m\r\nnext', body)

    def test_no_output_sends_nothing(self):
        self.assertEqual(b'', replay.history(''))


class ReplayOnConnectTest(base.TestCase):
    def connect_and_read(self, compute, replay_lines=50):
        async def scenario():
            loop = asyncio.get_running_loop()
            guest = await loop.create_server(asyncio.Protocol, '127.0.0.1',
                                             0)
            proxy = make_proxy(
                StubConsoleAuth(guest.sockets[0].getsockname()[1]), compute,
                replay_lines=replay_lines)
            await proxy.start('127.0.0.1', 0)
            client = await open_websocket(loop, proxy.bound_port)
            try:
                return await asyncio.wait_for(loop.sock_recv(client, 4096),
                                              1)
            except asyncio.TimeoutError:
                return b''
            finally:
                client.close()
                await proxy.stop()
                guest.close()
        return asyncio.run(scenario())

    def test_recent_output_is_the_first_frame(self):
        frame = self.connect_and_read(StubCompute('booted\nprompt# '))
        self.assertEqual(0x82, frame[0])
        self.assertIn(b'booted\r\nprompt# ', frame)

    def test_console_opens_without_a_log(self):
        self.assertEqual(b'', self.connect_and_read(StubCompute(None)))

    def test_replay_can_be_turned_off(self):
        self.assertEqual(b'', self.connect_and_read(
            StubCompute('booted'), replay_lines=0))
