"""The REST API under any body and microversion hypothesis can think of.

Through the real pipeline (keystonemiddleware's fixture, policy, real
consoleauth and compute agent on libvirt's test driver): whatever JSON or
bytes arrive and whatever version is asked for, the answer is 2xx or a
4xx in Nova's fault shape, never a 500.
"""

import json
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.api import base
from tests.unit import hypothesis_profiles  # noqa: F401

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
    st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
# Bodies near the right shape find more than uniformly random JSON.
console_bodies = st.fixed_dictionaries({}, optional={
    'remote_console': st.fixed_dictionaries({}, optional={
        'protocol': st.sampled_from(['serial', 'vnc', 'SERIAL', '']) |
        json_values,
        'type': st.sampled_from(['serial', 'novnc', '']) | json_values,
        'index': json_values}),
    'serial_console': json_values,
    'os-getSerialConsole': st.fixed_dictionaries(
        {}, optional={'type': st.sampled_from(['serial', 'x']) |
                      json_values}),
}) | json_values
versions = st.sampled_from(['2.1', '2.6', '2.31', '2.32', 'latest', '3.0',
                            '2.', '2.06', ' 2.6 ', '']) | \
    st.text(max_size=12)


class APIPropertiesTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.server_id = self.define()
        self.server = '/v2.1/servers/%s' % self.server_id

    def assertNoServerError(self, resp):
        self.assertLess(resp.status_int, 500, resp.body)
        if resp.status_int >= 400 and resp.body:
            fault = json.loads(resp.body)
            (name, detail), = fault.items()
            self.assertEqual(resp.status_int, detail['code'])
            self.assertTrue(detail['message'])

    @given(console_bodies, versions, st.sampled_from(['remote-consoles',
                                                      'action']))
    def test_any_json_body_and_version(self, body, version, where):
        headers = {'OpenStack-API-Version': 'compute %s' % version,
                   'X-OpenStack-Nova-API-Version': version}
        resp = self.request('POST', '%s/%s' % (self.server, where),
                            body=body, headers=headers)
        self.assertNoServerError(resp)

    @given(st.binary(max_size=300), st.sampled_from(
        ['application/json', 'text/plain', '', 'application/json; x=y']))
    def test_any_bytes_as_a_body(self, raw, content_type):
        resp = self.request('POST', '%s/remote-consoles' % self.server,
                            raw=raw, version='2.6',
                            headers={'Content-Type': content_type})
        self.assertNoServerError(resp)

    @given(st.text(max_size=40), st.text(max_size=40),
           st.sampled_from(['GET', 'DELETE', 'POST', 'PUT']))
    def test_any_path_and_query_under_the_server(self, tail, query,
                                                 method):
        # Percent-encoded as a client sends them; '%' left alone, so
        # stray and broken escapes arrive too.
        path = '%s/%s?%s' % (self.server, urllib.parse.quote(tail, '/%'),
                             urllib.parse.quote(query, '=&%'))
        self.assertNoServerError(self.request(method, path, version='2.31'))
        path = '%s/serial-console/sessions?%s' % (
            self.server, urllib.parse.quote(query, '=&%'))
        self.assertNoServerError(self.request(method, path, version='2.31'))
