"""serialproxy-console URL: a serial console in this terminal.

For operators and demos without a browser: puts the local terminal in raw
mode and joins it to a console URL over a websocket. Ctrl-] leaves.
``serialproxy-console --ssh SERVER`` opens it over SSH instead (see
console_ssh).
"""

import os
import select
import sys
import termios
import tty

import websocket

from serialproxy.cmd import console_ssh

ESCAPE = b'\x1d'  # Ctrl-], as telnet


def _pump(ws, stdin_fd, stdout):
    # Whether the message being received is text: the proxy's notes to
    # the console page, not console bytes (which are always binary).
    text = False
    while True:
        readable, _, _ = select.select([ws.sock, stdin_fd], [], [])
        if stdin_fd in readable:
            data = os.read(stdin_fd, 4096)
            if not data or ESCAPE in data:
                return 'left the console'
            ws.send_binary(data)
        if ws.sock in readable:
            frame = ws.recv_frame()
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                code, reason = _close_status(frame.data)
                return 'closed by the proxy: %s %s' % (code, reason)
            if frame.opcode in (websocket.ABNF.OPCODE_BINARY,
                                websocket.ABNF.OPCODE_TEXT):
                text = frame.opcode == websocket.ABNF.OPCODE_TEXT
            if not text and frame.opcode in (websocket.ABNF.OPCODE_BINARY,
                                             websocket.ABNF.OPCODE_CONT):
                stdout.write(frame.data)
                stdout.flush()


def _close_status(payload):
    if len(payload) < 2:
        return '', ''
    return (int.from_bytes(payload[:2], 'big'),
            payload[2:].decode('utf-8', 'replace'))


def main(argv=None):
    argv = sys.argv if argv is None else argv
    if len(argv) > 1 and argv[1] == '--ssh':
        return console_ssh.main(argv[2:])
    if len(argv) != 2 or argv[1] in ('-h', '--help'):
        print('usage: serialproxy-console URL\n'
              '       serialproxy-console --ssh SERVER [--help]',
              file=sys.stderr)
        return 2
    url = argv[1]
    try:
        ws = websocket.create_connection(url, subprotocols=['binary'])
    except websocket.WebSocketBadStatusException as exc:
        print('serialproxy-console: refused: %s %s' % (
            exc.status_code, exc.resp_body.decode('utf-8', 'replace').strip()
            if exc.resp_body else ''), file=sys.stderr)
        return 1
    except (OSError, websocket.WebSocketException) as exc:
        print('serialproxy-console: cannot connect: %s' % exc,
              file=sys.stderr)
        return 1
    print('Connected. Ctrl-] leaves.\r', file=sys.stderr)
    stdin_fd = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin_fd) if os.isatty(stdin_fd) else None
    try:
        if saved is not None:
            tty.setraw(stdin_fd)
        outcome = _pump(ws, stdin_fd, sys.stdout.buffer)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        ws.close()
    print('\nserialproxy-console: %s' % outcome, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
