"""serialproxy-console --output SERVER: what a serial console printed.

Reads the history API (GET /servers/{id}/serial-console/output) page
after page with start = next and writes the bytes as they are; with
--follow it polls for new output until interrupted, like GCP's
tail-serial-port-output. Nothing here opens the console, so nobody's
session is taken or shared.
"""

import argparse
import base64
import sys
import time

from serialproxy.cmd import api_client

PROG = 'serialproxy-console --output'


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG, description='Print what a server\'s serial console '
                               'printed, and with --follow what it prints '
                               'next.')
    parser.add_argument('server', help='the server\'s id')
    parser.add_argument('--follow', '-f', action='store_true',
                        help='keep printing new output until interrupted')
    parser.add_argument('--since', type=int, default=0, metavar='N',
                        help='start at byte offset N since boot (a "next" '
                             'printed earlier); negative: N bytes before '
                             'the end. Default: all that is kept')
    parser.add_argument('--interval', type=float, default=1.0,
                        help='seconds between polls with --follow '
                             '(default 1)')
    api_client.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error('--interval must be above 0')
    return args


def pages(get_page, start, follow=False, interval=1.0, note=None,
          sleep=time.sleep):
    """The console's bytes from start, in pages; with follow, forever.

    get_page(start) is the API's serial_console_output. note(text) hears
    of skipped bytes (older than what is kept) and of a new boot (the
    log begins again at 0).
    """
    note = note or (lambda text: None)
    while True:
        page = get_page(start)
        if start is not None and start >= 0 and page['start'] > start:
            note('bytes %d to %d are no longer kept' % (start,
                                                        page['start']))
        data = base64.b64decode(page['data'])
        if data:
            yield data, page['next']
        elif start is not None and page['next'] < start:
            # The log ends before where we are: the guest booted again.
            note('the console log began again (the server restarted)')
            start = 0
            continue
        elif not follow:
            return
        else:
            sleep(interval)
        start = page['next']


def main(argv):
    args = parse_args(argv)
    path = '/v2.1/servers/%s/serial-console/output' % args.server
    out = sys.stdout.buffer
    next_offset = None

    def get_page(start):
        return api_client.request(
            args.api_url, args.token, 'GET',
            '%s?start=%d' % (path, start))['serial_console_output']

    def note(text):
        out.flush()
        print('%s: %s' % (PROG, text), file=sys.stderr)

    try:
        for data, next_offset in pages(get_page, args.since, args.follow,
                                       args.interval, note):
            out.write(data)
            out.flush()
    except api_client.APIError as exc:
        note('the API refused: %s' % exc if exc.status else str(exc))
        return 1
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        return 0
    if next_offset is not None:
        note('next offset %d (--since %d goes on from here)'
             % (next_offset, next_offset))
    return 0
