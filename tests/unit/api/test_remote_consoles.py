"""The API through real RPC to real consoleauth and compute endpoints."""

import json
import urllib.parse
import uuid

import libvirt
import webob

from serialproxy.api import app
from serialproxy.api import remote_consoles
from serialproxy.compute import libvirt_driver
from serialproxy.compute import manager as compute_manager
from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy.consoleauth import manager as consoleauth_manager
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy.db import api as db_api
from serialproxy.proxy import rpcapi as proxy_rpcapi
from tests.unit import base
from tests.unit import rpc_fixture

TEST_URI = 'test:///default'
DOMAIN = """<domain type='test'><name>%(name)s</name><uuid>%(uuid)s</uuid>
  <memory>65536</memory><os><type>hvm</type></os><devices>
  <serial type='tcp'><source mode='bind' host='127.0.0.1' service='10077'/>
  <protocol type='raw'/><target port='0'/></serial></devices></domain>"""
BODY = {'remote_console': {'protocol': 'serial', 'type': 'serial'}}


class RemoteConsolesTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.flags(group='serial_console',
                   base_url='wss://console.example/serial/')
        database = db_api.Database('sqlite:///%s/db' % self.state_path)
        database.sync()
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        self.consoleauth = consoleauth_manager.ConsoleAuthManager(
            database, proxy_rpcapi.ProxyAPI())
        rpc.serve(consoleauth_rpcapi.TOPIC, self.consoleauth)
        driver = libvirt_driver.LibvirtDriver(TEST_URI, 'compute-1',
                                              '127.0.0.1')
        self.compute = compute_manager.ComputeManager(
            driver, consoleauth_rpcapi.ConsoleAuthAPI())
        rpc.serve(compute_rpcapi.TOPIC, self.compute, server='compute-1')
        self.conn = libvirt.open(TEST_URI)
        self.addCleanup(self.conn.close)
        self.app = app.APIRouter()

    def define(self, start=True):
        instance_uuid = str(uuid.uuid4())
        dom = self.conn.defineXML(DOMAIN % {'name': 'vm-' + instance_uuid,
                                            'uuid': instance_uuid})
        if start:
            dom.create()

        def remove():
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        self.addCleanup(remove)
        self.compute.report_instances()
        return instance_uuid

    def post(self, server_id, body=BODY, raw=None):
        req = webob.Request.blank(
            '/v2.1/servers/%s/remote-consoles' % server_id, method='POST',
            content_type='application/json',
            body=raw if raw is not None else json.dumps(body).encode())
        return req.get_response(self.app)

    def test_url_carries_a_token_that_opens_this_console(self):
        server_id = self.define()
        resp = self.post(server_id)
        self.assertEqual(200, resp.status_int)
        console = resp.json['remote_console']
        self.assertEqual(('serial', 'serial'),
                         (console['protocol'], console['type']))
        url = urllib.parse.urlsplit(console['url'])
        self.assertEqual(('wss', 'console.example', '/serial/'),
                         (url.scheme, url.netloc, url.path))
        token, = urllib.parse.parse_qs(url.query)['token']
        checked = consoleauth_rpcapi.ConsoleAuthAPI().check_token({}, token)
        self.assertEqual((server_id, 'compute-1', '127.0.0.1', 10077),
                         (checked['instance_uuid'], checked['compute_host'],
                          checked['host'], checked['port']))

    def assertFault(self, resp, code, name):
        self.assertEqual(code, resp.status_int)
        self.assertEqual(code, resp.json[name]['code'])
        self.assertTrue(resp.json[name]['message'])

    def test_unknown_server_is_404(self):
        self.assertFault(self.post(str(uuid.uuid4())), 404, 'itemNotFound')

    def test_stopped_server_is_409(self):
        self.assertFault(self.post(self.define(start=False)), 409,
                         'conflictingRequest')

    def test_other_console_types_are_400(self):
        server_id = self.define()
        for console in ({'protocol': 'vnc', 'type': 'novnc'},
                        {'protocol': 'telnet', 'type': 'serial'},
                        {'protocol': 'serial', 'type': 'spice-html5'}):
            self.assertFault(self.post(server_id, {'remote_console':
                                                   console}),
                             400, 'badRequest')

    def test_malformed_bodies_are_400(self):
        server_id = self.define()
        for raw in (b'{', b'[]', b'{"remote_console": "serial"}', b''):
            self.assertFault(self.post(server_id, raw=raw), 400,
                             'badRequest')

    def test_huge_body_is_refused_without_reading_it_all(self):
        raw = b'{"x": "' + b'a' * (app.MAX_BODY_BYTES + 1) + b'"}'
        self.assertFault(self.post(self.define(), raw=raw), 400,
                         'badRequest')

    def test_disabled_serial_console_is_501(self):
        self.flags(group='serial_console', enabled=False)
        self.assertFault(self.post(self.define()), 501, 'notImplemented')

    def test_unknown_route_is_404_and_wrong_method_405(self):
        resp = webob.Request.blank('/v2.1/nothing').get_response(self.app)
        self.assertFault(resp, 404, 'itemNotFound')
        resp = webob.Request.blank(
            '/v2.1/servers/x/remote-consoles').get_response(self.app)
        self.assertFault(resp, 405, 'badMethod')
        self.assertEqual('POST', resp.headers['Allow'])


class ConsoleUrlTest(base.TestCase):
    def test_token_is_appended_to_an_existing_query(self):
        self.assertEqual(
            'https://p.example/c/?lang=en&token=abc',
            remote_consoles.console_url('https://p.example/c/?lang=en',
                                        'abc'))
