"""serialproxy-manage serial-console add, on libvirt's test driver."""

import configparser
import io
import os
import uuid

import fixtures
import libvirt

from serialproxy.cmd import manage
from serialproxy.compute import domain_xml
from serialproxy.compute import port_pool
from serialproxy.db import api as db_api
from serialproxy.db import migration
from tests.unit import base
from tests.unit.compute.test_libvirt_driver import DOMAIN
from tests.unit.compute.test_libvirt_driver import TEST_URI

PTY_CONSOLE = """<serial type='pty'><target port='0'/></serial>
<console type='pty'><target type='serial' port='0'/></console>"""


class SerialConsoleAddTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.conn = libvirt.open(TEST_URI)
        self.addCleanup(self.conn.close)
        config = configparser.ConfigParser()
        config['DEFAULT'] = {'host': 'compute-1'}
        config['libvirt'] = {'connection_uri': TEST_URI}
        config['serial_console'] = {'port_range': '21000:21100',
                                    'proxyclient_address': '127.0.0.1'}
        self.config_file = os.path.join(self.state_path, 'sp.conf')
        with open(self.config_file, 'w') as f:
            config.write(f)
        self.stdout = self.useFixture(
            fixtures.MonkeyPatch('sys.stdout', io.StringIO())).new_value
        self.stderr = self.useFixture(
            fixtures.MonkeyPatch('sys.stderr', io.StringIO())).new_value
        self.addCleanup(self.forget_command)

    @staticmethod
    def forget_command():
        """main() registers its sub-command on the process's CONF: later
        tests that parse an empty command line would be told it is
        missing."""
        manage.CONF.clear()
        manage.CONF.unregister_opt(manage._COMMAND)

    def define(self, devices=PTY_CONSOLE):
        instance_uuid = str(uuid.uuid4())
        dom = self.conn.defineXML(DOMAIN % {
            'name': 'vm-' + instance_uuid[:8], 'uuid': instance_uuid,
            'devices': devices})
        self.addCleanup(dom.undefine)
        return dom

    def manage(self, *args):
        return manage.main(['serialproxy-manage', '--config-file',
                            self.config_file, *args])

    def pool(self):
        pool = port_pool.PortPool(
            os.path.join(self.state_path, 'serial_port_pool.sqlite'),
            '21000:21100', '127.0.0.1')
        self.addCleanup(pool.close)
        return pool

    def test_domain_gets_tcp_consoles_from_the_pool(self):
        dom = self.define()
        self.assertEqual(0, self.manage('serial-console', 'add', dom.name(),
                                        '--count', '2'))
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        ports = domain_xml.tcp_serial_ports(xml, 'unused')
        self.assertEqual([0, 1], [p['index'] for p in ports])
        self.assertEqual(
            {p['port']: p['index'] for p in ports},
            {a['port']: a['index']
             for a in self.pool().allocations(dom.UUIDString())
             if a['confirmed']})
        self.assertEqual(
            os.path.join(self.state_path, 'console-log',
                         dom.UUIDString() + '.log'),
            domain_xml.console_log_file(xml))
        self.assertIn(str(ports[0]['port']), self.stdout.getvalue())

    def test_domain_with_tcp_consoles_is_left_alone(self):
        dom = self.define(domain_xml.serial_devices([21050], '127.0.0.1')[0])
        before = dom.XMLDesc(0)
        self.assertEqual(0, self.manage('serial-console', 'add',
                                        dom.UUIDString()))
        self.assertEqual(before, dom.XMLDesc(0))
        self.assertIn('already has TCP serial consoles on ports 21050',
                      self.stdout.getvalue())
        self.assertEqual([], self.pool().allocations())

    def test_unknown_domain_is_a_clear_failure(self):
        self.assertEqual(1, self.manage('serial-console', 'add', 'nope-vm'))
        self.assertIn('nope-vm could not be found', self.stderr.getvalue())

    def test_count_over_the_limit_is_refused_and_nothing_changes(self):
        dom = self.define()
        before = dom.XMLDesc(0)
        self.assertEqual(1, self.manage('serial-console', 'add', dom.name(),
                                        '--count', '4'))
        self.assertIn('exceeds 3', self.stderr.getvalue())
        self.assertEqual(before, dom.XMLDesc(0))
        self.assertEqual([], self.pool().allocations())

    def test_replace_moves_existing_tcp_consoles_into_the_pool(self):
        dom = self.define(domain_xml.serial_devices([21050], '127.0.0.1')[0])
        self.assertEqual(0, self.manage('serial-console', 'add', dom.name(),
                                        '--replace'))
        [port] = domain_xml.tcp_serial_ports(dom.XMLDesc(0), 'unused')
        self.assertNotEqual(21050, port['port'])
        self.assertEqual([port['port']], [
            a['port'] for a in self.pool().allocations(dom.UUIDString())])


class DbCommandsTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.url = 'sqlite:///%s/ca.sqlite' % self.state_path
        self.config_file = os.path.join(self.state_path, 'sp.conf')
        with open(self.config_file, 'w') as f:
            f.write('[database]\nconnection = %s\n' % self.url)
        self.stdout = self.useFixture(
            fixtures.MonkeyPatch('sys.stdout', io.StringIO())).new_value
        self.addCleanup(SerialConsoleAddTest.forget_command)

    def manage(self, *args):
        code = manage.main(['serialproxy-manage', '--config-file',
                            self.config_file, *args])
        return code, self.stdout.getvalue().strip()

    def test_sync_brings_the_schema_to_head(self):
        self.assertEqual((0, 'Database schema is up to date.'),
                         self.manage('db', 'sync'))
        database = db_api.Database(self.url)
        self.assertEqual(migration.head(), migration.current(database.engine))

    def test_version_of_an_empty_database_says_to_sync(self):
        self.assertEqual((0, 'none (run "db sync")'),
                         self.manage('db', 'version'))

    def test_version_of_a_synced_database_is_head(self):
        db_api.Database(self.url).sync()
        self.assertEqual((0, migration.head()), self.manage('db', 'version'))
