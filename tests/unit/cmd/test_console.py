"""serialproxy-console's websocket pump, with a scripted websocket."""

import io
import os

import websocket

from serialproxy.cmd import console
from tests.unit import base

ABNF = websocket.ABNF


class ScriptedWebSocket:
    """Frames to hand out one by one; readable while any are left."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.sent = []
        self.read_end, self.write_end = os.pipe()
        os.write(self.write_end, b'x')
        self.sock = self.read_end

    def recv_frame(self):
        return self.frames.pop(0)

    def send_binary(self, data):
        self.sent.append(data)


class PumpTest(base.TestCase):
    def test_console_bytes_are_written_and_the_proxys_notes_are_not(self):
        frames = [
            ABNF(1, 0, 0, 0, ABNF.OPCODE_TEXT, 0, b'{"spectators": 1}'),
            ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 0, b'login: '),
            ABNF(0, 0, 0, 0, ABNF.OPCODE_TEXT, 0, b'{"permis'),
            ABNF(1, 0, 0, 0, ABNF.OPCODE_CONT, 0, b'sions": []}'),
            ABNF(0, 0, 0, 0, ABNF.OPCODE_BINARY, 0, b'root'),
            ABNF(1, 0, 0, 0, ABNF.OPCODE_CONT, 0, b'\r\n'),
            ABNF(1, 0, 0, 0, ABNF.OPCODE_CLOSE, 0,
                 (4001).to_bytes(2, 'big') + b'Disconnected'),
        ]
        ws = ScriptedWebSocket(frames)
        self.addCleanup(os.close, ws.read_end)
        self.addCleanup(os.close, ws.write_end)
        stdin_read, stdin_write = os.pipe()
        self.addCleanup(os.close, stdin_read)
        self.addCleanup(os.close, stdin_write)
        stdout = io.BytesIO()
        outcome = console._pump(ws, stdin_read, stdout)
        self.assertEqual('closed by the proxy: 4001 Disconnected', outcome)
        self.assertEqual(b'login: root\r\n', stdout.getvalue())
