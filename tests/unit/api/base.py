"""The API world of a unit test: the real paste pipeline with
keystonemiddleware (its own AuthTokenFixture stands in for Keystone),
real consoleauth on SQLite and a real compute agent on libvirt's
test:///default, joined by in-process RPC."""

import json
import os
import uuid

from keystonemiddleware import fixture as ksm_fixture
import libvirt
import webob

from serialproxy.api import pipeline
from serialproxy.compute import domain_xml
from serialproxy.compute import libvirt_driver
from serialproxy.compute import manager as compute_manager
from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy.consoleauth import manager as consoleauth_manager
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy.db import api as db_api
from serialproxy import conf as sp_conf
from serialproxy import policy
from serialproxy.proxy import rpcapi as proxy_rpcapi
from tests.unit import base
from tests.unit import rpc_fixture

TEST_URI = 'test:///default'
COMPUTE_HOST = 'compute-1'
PROJECT = 'c0ffee00c0ffee00c0ffee00c0ffee00'
OTHER_PROJECT = 'badcafe0badcafe0badcafe0badcafe0'
USER = 'f00df00df00df00df00df00df00df00d'

DOMAIN = """<domain type='test'><name>%(name)s</name><uuid>%(uuid)s</uuid>
  <memory>65536</memory><os><type>hvm</type></os>
  <metadata><nova:instance xmlns:nova="%(nova_ns)s">
    <nova:owner><nova:user uuid="%(user)s">u</nova:user>
    <nova:project uuid="%(project)s">p</nova:project></nova:owner>
  </nova:instance></metadata>
  <devices>%(serial)s</devices></domain>"""
SERIAL = """<serial type='tcp'>
  <source mode='bind' host='127.0.0.1' service='%(port)d'/>%(log)s
  <protocol type='raw'/><target port='0'/></serial>"""


class APITestCase(base.TestCase):
    """Requests through api-paste.ini's keystone pipeline."""

    auth_strategy = 'keystone'

    def setUp(self):
        super().setUp()
        # oslo.policy looks for its policy file beside the config files:
        # parse an empty command line so that there are none.
        sp_conf.CONF([], project='serialproxy', default_config_files=[])
        self.flags(group='serial_console',
                   base_url='wss://console.example/serial/')
        self.flags(group='api', auth_strategy=self.auth_strategy)
        # auth_token names the identity service in 401 answers; with the
        # fixture nothing is ever fetched from it.
        self.flags(group='keystone_authtoken',
                   www_authenticate_uri='https://keystone.example/v3')
        policy.reset()
        self.addCleanup(policy.reset)
        self.auth = self.useFixture(ksm_fixture.AuthTokenFixture())
        self.tokens = {
            'admin': self._token(PROJECT, ['admin', 'member', 'reader']),
            'member': self._token(PROJECT, ['member', 'reader']),
            'reader': self._token(PROJECT, ['reader']),
            'other': self._token(OTHER_PROJECT, ['member', 'reader']),
        }

        database = db_api.Database('sqlite:///%s/db' % self.state_path)
        database.sync()
        self.rpc = self.useFixture(rpc_fixture.InProcessRPC())
        self.consoleauth = consoleauth_manager.ConsoleAuthManager(
            database, proxy_rpcapi.ProxyAPI())
        self.rpc.serve(consoleauth_rpcapi.TOPIC, self.consoleauth)
        driver = libvirt_driver.LibvirtDriver(TEST_URI, COMPUTE_HOST,
                                              '127.0.0.1')
        self.compute = self.compute_endpoint(
            driver, consoleauth_rpcapi.ConsoleAuthAPI())
        self.rpc.serve(compute_rpcapi.TOPIC, self.compute,
                       server=COMPUTE_HOST)
        self.conn = libvirt.open(TEST_URI)
        self.addCleanup(self.conn.close)
        self.app = pipeline.load_app()

    def compute_endpoint(self, driver, consoleauth_api):
        return compute_manager.ComputeManager(driver, consoleauth_api)

    def _token(self, project_id, roles, user_id=USER):
        token_id = uuid.uuid4().hex
        self.auth.add_token_data(
            token_id=token_id, user_id=user_id, project_id=project_id,
            role_list=roles, user_domain_id='default',
            project_domain_id='default')
        return token_id

    def define(self, start=True, project=PROJECT, name=None, port=10077,
               serial=True, instance_uuid=None, console_log=None):
        """A libvirt domain owned by project, reported to consoleauth.

        console_log: the text of serial port 0's log file, which the
        compute agent reads for console output (virtlogd's part).
        """
        instance_uuid = instance_uuid or str(uuid.uuid4())
        log = ''
        if console_log is not None:
            path = os.path.join(self.state_path, instance_uuid + '.log')
            with open(path, 'w') as f:
                f.write(console_log)
            log = "<log file='%s' append='off'/>" % path
        dom = self.conn.defineXML(DOMAIN % {
            'name': name or 'vm-' + instance_uuid, 'uuid': instance_uuid,
            'user': USER, 'project': project, 'nova_ns': domain_xml.NOVA_NS,
            'serial': SERIAL % {'port': port, 'log': log} if serial else ''})
        if start:
            dom.create()

        def remove():
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        self.addCleanup(remove)
        self.compute.report_instances()
        return instance_uuid

    def request(self, method, path, body=None, raw=None, token='member',
                version=None, headers=None):
        all_headers = {}
        if token is not None:
            all_headers['X-Auth-Token'] = self.tokens.get(token, token)
        if version is not None:
            all_headers['OpenStack-API-Version'] = 'compute %s' % version
        all_headers.update(headers or {})
        kwargs = {}
        if raw is not None:
            kwargs['body'] = raw
        elif body is not None:
            kwargs['body'] = json.dumps(body).encode()
        if 'body' in kwargs:
            all_headers.setdefault('Content-Type', 'application/json')
        req = webob.Request.blank(path, method=method, headers=all_headers,
                                  **kwargs)
        return req.get_response(self.app)

    def assertFault(self, resp, code, name, message_part=None):
        self.assertEqual(code, resp.status_int, resp.body)
        body = resp.json
        self.assertEqual([name], list(body))
        self.assertEqual(code, body[name]['code'])
        self.assertTrue(body[name]['message'])
        if message_part is not None:
            self.assertIn(message_part, body[name]['message'])
