"""Results of the API benchmarks (api_urls.py, api_uwsgi.py).

One row per deployment and concurrency: console URLs per second and the
p50/p99 latency of an answer. Printed as a table; written with --json as
a list of {"deployment", "concurrency", "per_second", "p50_ms", "p99_ms"}
(plus "requests" and "errors") for whoever assembles the figures.
"""

import json
import os

from tests.harness.measures import percentile


def row(deployment, concurrency, latencies, errors, seconds):
    """A result row from the latencies (seconds) of answered requests."""
    latencies = sorted(latencies)
    return {'deployment': deployment, 'concurrency': concurrency,
            'per_second': round(len(latencies) / seconds, 1),
            'p50_ms': round(percentile(latencies, .5) * 1000, 1),
            'p99_ms': round(percentile(latencies, .99) * 1000, 1),
            'requests': len(latencies), 'errors': errors}


HEADER = '%-38s %4s %8s %8s %8s %9s %6s' % (
    'deployment', 'conc', 'URLs/s', 'p50 ms', 'p99 ms', 'requests',
    'errors')


def print_row(result):
    print('%(deployment)-38s %(concurrency)4d %(per_second)8.1f '
          '%(p50_ms)8.1f %(p99_ms)8.1f %(requests)9d %(errors)6d' % result,
          flush=True)


def add_json_argument(parser):
    parser.add_argument('--json', metavar='PATH',
                        help='also write the rows to PATH as a JSON list')


def write_json(path, rows):
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(rows, f, indent=2)
            f.write('\n')
