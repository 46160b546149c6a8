"""doc/performance.rst's writer renders the held-sessions figures."""

import json
import os
import tempfile

from tests.unit import base
from tools.bench import performance_doc

HELD = {'workers': 2, 'round_trips': 1000, 'opened_per_second': 600.0,
        'rows': [
            {'path': 'serialproxy', 'sessions': 10000, 'failed': 0,
             'rss_kib_per_session': 9.9, 'pss_kib_per_session': 17.7,
             'rtt_p50_us': 150.0, 'rtt_p99_us': 400.0},
            {'path': 'websockify', 'sessions': 200, 'failed': 0,
             'rss_kib_per_session': 31328.1, 'pss_kib_per_session': 3605.6,
             'rtt_p50_us': 200.0, 'rtt_p99_us': 900.0},
            {'path': 'direct TCP', 'sessions': 1, 'failed': 0,
             'rtt_p50_us': 50.0, 'rtt_p99_us': 90.0}]}


class HeldSessionsSectionTest(base.TestCase):
    def render(self, held):
        with tempfile.TemporaryDirectory() as results:
            with open(os.path.join(results, 'proxy_sessions.json'),
                      'w') as f:
                json.dump(held, f)
            return performance_doc.render(
                results, today='2026-12-06', this_machine='a machine',
                at_commit='abc1234')

    def row(self, text, name):
        return [line.split() for line in text.splitlines()
                if line.startswith(name + '  ')][0]

    def test_each_path_with_its_ratios_to_websockify_and_direct_tcp(self):
        text = self.render(HELD)
        self.assertIn('Held sessions and round trips', text)
        self.assertEqual(['serialproxy', '10000', '9.9', '/', '17.7',
                          '150', '/', '400', '0.75x', '3.00x', '0'],
                         self.row(text, 'serialproxy'))
        self.assertEqual(['websockify', '200', '31328.1', '/', '3605.6',
                          '200', '/', '900', '1.00x', '4.00x', '0'],
                         self.row(text, 'websockify'))
        self.assertEqual(['direct', 'TCP', '1', '-', '50', '/', '90',
                          '0.25x', '1.00x', '0'],
                         self.row(text, 'direct TCP'))
        self.assertIn('2 here', text)
        self.assertIn('1000 each', text)

    def test_no_section_without_the_figures(self):
        with tempfile.TemporaryDirectory() as results:
            text = performance_doc.render(
                results, today='2026-12-06', this_machine='a machine',
                at_commit='abc1234')
        self.assertNotIn('Held sessions', text)
