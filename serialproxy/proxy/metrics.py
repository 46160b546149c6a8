"""The proxy's counters, in Prometheus text exposition format.

Counted on the event loop with plain integers, so counting costs nothing
next to the bytes it counts; with several session loops each counts its
own and a scrape adds them up (ProxyMetrics.total). Labels are bounded
sets (a direction, a refusal status and its fixed reason text): never a
token, never a client address.
"""

import bisect
import collections

# Seconds from request received to 101 sent.
SETUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                 10.0)


class ProxyMetrics:
    def __init__(self):
        self.sessions_total = 0
        self.bytes_to_guest = 0
        self.bytes_to_client = 0
        self.refusals = collections.Counter()
        self.setup_counts = [0] * (len(SETUP_BUCKETS) + 1)
        self.setup_sum = 0.0

    @classmethod
    def total(cls, parts):
        """One ProxyMetrics holding the sum of parts."""
        summed = cls()
        for part in parts:
            summed.sessions_total += part.sessions_total
            summed.bytes_to_guest += part.bytes_to_guest
            summed.bytes_to_client += part.bytes_to_client
            summed.refusals.update(dict(part.refusals))
            summed.setup_counts = [a + b for a, b in zip(
                summed.setup_counts, part.setup_counts)]
            summed.setup_sum += part.setup_sum
        return summed

    def refused(self, status, reason):
        self.refusals[(status, reason)] += 1

    def session_set_up(self, seconds):
        self.sessions_total += 1
        self.setup_counts[bisect.bisect_left(SETUP_BUCKETS, seconds)] += 1
        self.setup_sum += seconds

    def render(self, active_sessions):
        lines = [
            '# HELP serialproxy_sessions_active Console sessions open now.',
            '# TYPE serialproxy_sessions_active gauge',
            'serialproxy_sessions_active %d' % active_sessions,
            '# HELP serialproxy_sessions_total Console sessions opened.',
            '# TYPE serialproxy_sessions_total counter',
            'serialproxy_sessions_total %d' % self.sessions_total,
            '# HELP serialproxy_bytes_total Console bytes moved, by '
            'direction.',
            '# TYPE serialproxy_bytes_total counter',
            'serialproxy_bytes_total{direction="to_guest"} %d'
            % self.bytes_to_guest,
            'serialproxy_bytes_total{direction="to_client"} %d'
            % self.bytes_to_client,
            '# HELP serialproxy_refusals_total Connections refused before '
            'the upgrade, by status and reason.',
            '# TYPE serialproxy_refusals_total counter',
        ]
        for (status, reason), count in sorted(self.refusals.items()):
            lines.append('serialproxy_refusals_total{status="%d",'
                         'reason="%s"} %d' % (status, _label(reason), count))
        lines += [
            '# HELP serialproxy_session_setup_seconds Time from request to '
            'websocket upgrade.',
            '# TYPE serialproxy_session_setup_seconds histogram',
        ]
        cumulative = 0
        for bound, count in zip(SETUP_BUCKETS + (None,), self.setup_counts):
            cumulative += count
            lines.append('serialproxy_session_setup_seconds_bucket{le="%s"} '
                         '%d' % ('+Inf' if bound is None else repr(bound),
                                 cumulative))
        lines += ['serialproxy_session_setup_seconds_sum %.6f'
                  % self.setup_sum,
                  'serialproxy_session_setup_seconds_count %d' % cumulative]
        return '\n'.join(lines) + '\n'


def _label(value):
    return value.replace('\\', '\\\\').replace('"', '\\"').replace('\n',
                                                                   '\\n')
