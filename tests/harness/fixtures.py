"""The real world a functional test builds: guests, brokers, services.

Nothing here is mocked. Each fixture cleans up after itself; a missing
component is a failure, not a skip (tools/test-setup.sh provides them).
"""

import configparser
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import fixtures
import sqlalchemy as sa
import websocket

from tests.harness import processes
from tests.harness import services
from tests.harness import testcase

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
LIBVIRT_URI = os.environ.get('SERIALPROXY_LIBVIRT_URI', 'qemu:///system')
SERIALPROXY_NS = 'http://openstack.org/xmlns/serialproxy/1.0'
RABBIT = os.environ.get('SERIALPROXY_RABBIT_URL',
                        'rabbit://guest:guest@127.0.0.1:5672/')
# SQL servers and the test account tools/test-setup.sh gives them; the
# account may create and drop databases named sp_test_*.
SQL_SERVERS = {
    'postgresql': os.environ.get(
        'SERIALPROXY_TEST_POSTGRESQL_URL',
        'postgresql+psycopg2://serialproxy_test:serialproxy_test'
        '@127.0.0.1:5432/postgres'),
    'mysql': os.environ.get(
        'SERIALPROXY_TEST_MYSQL_URL',
        'mysql+pymysql://serialproxy_test:serialproxy_test'
        '@127.0.0.1:3306/?charset=utf8mb4'),
}


# What tests reach through this module since before tests/harness existed.
free_port = processes.free_port
children = processes.children
process_tree = processes.process_tree
crash = processes.crash
terminate = processes.terminate
wait_for = processes.wait_for


class Guest(fixtures.Fixture):
    """A QEMU guest under libvirtd whose ttyS0 is a TCP port on loopback.

    The tiny busybox guest of tools/build-guest.sh, defined by
    tools/define-guest.sh: the same path a demo takes.
    """

    # A TCG boot takes 20-40 s on an idle 2-core machine and several times
    # that beside other guests and benchmarks; a boot that never ends
    # still fails, only later.
    def __init__(self, boot_timeout=300, before_start=None,
                 serial_log=None, project_id=None, user_id=None,
                 libvirt_uri=LIBVIRT_URI, run_prefix=(), env=None):
        """before_start(guest), if given, may change the defined domain
        before it boots (and must then set guest.port to its console,
        and guest.address when it listens elsewhere than on loopback).
        serial_log: absolute path virtlogd logs serial port 0 to.
        project_id and user_id, if given, become its owner.
        libvirt_uri, run_prefix and env: which libvirt, and how virsh and
        the tools reach it (a command prefix, an environment)."""
        self.boot_timeout = boot_timeout
        self.before_start = before_start
        self.serial_log = serial_log
        self.project_id = project_id
        self.user_id = user_id
        self.libvirt_uri = libvirt_uri
        self.run_prefix = list(run_prefix)
        self.env = env
        self.address = '127.0.0.1'
        self.uuid = str(uuid.uuid4())
        self.name = 'sp-func-' + self.uuid[:8]
        self.port = free_port()

    def _setUp(self):
        self.addCleanup(self._remove)
        subprocess.run(
            [*self.run_prefix,
             os.path.join(ROOT, 'tools', 'define-guest.sh'), self.name,
             str(self.port), self.uuid],
            check=True, env=dict(self.env or os.environ, SP_REPLACE='1',
                                 SP_LIBVIRT_URI=self.libvirt_uri,
                                 SP_SERIAL_LOG=self.serial_log or ''))
        if self.project_id:
            self._set_owner()
        if self.before_start is not None:
            # define-guest.sh always starts the guest: stop it at once.
            self.virsh('destroy', self.name)
            self.before_start(self)
            self.virsh('start', self.name)
        # Now and then a TCG boot stalls for good on a loaded machine
        # (once in a few hundred here); a second boot gets the rest of
        # the time rather than the suite failing after boot_timeout.
        first_try = self.boot_timeout / 2
        try:
            wait_for(self._shell_answers, first_try, 'the guest shell')
        except AssertionError:
            sys.stderr.write('guest %s: no shell after %ds, booting it '
                             'again\n' % (self.name, first_try))
            self.virsh('destroy', self.name, check=False)
            self.virsh('start', self.name)
            wait_for(self._shell_answers, self.boot_timeout - first_try,
                     'the guest shell on %s:%d' % (self.address, self.port))

    def virsh(self, *args, check=True):
        return subprocess.run(
            [*self.run_prefix, 'virsh', '-q', '-c', self.libvirt_uri, *args],
            check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=self.env).stdout

    def set_owner(self, project_id, user_id=None):
        """Give a booted guest its owner, known only once it booted."""
        self.project_id, self.user_id = project_id, user_id
        self._set_owner()

    def _set_owner(self):
        # The owner as serialproxy's own domain metadata, which the compute
        # agent reports to the instance registry (Nova writes its own).
        owner = ('<owner xmlns="%s"><project uuid="%s"/><user uuid="%s"/>'
                 '</owner>' % (SERIALPROXY_NS, self.project_id,
                               self.user_id or ''))
        self.virsh('metadata', self.name, '--uri', SERIALPROXY_NS, '--key',
                   'sp', '--set', owner, '--live', '--config')

    def _shell_answers(self):
        # QEMU's tcp chardev takes one client at a time: probe, then leave.
        try:
            with socket.create_connection((self.address, self.port),
                                          timeout=2) as sock:
                sock.sendall(b'\necho ready-$((40+2))\n')
                return read_until(sock.recv, rb'ready-42\r?\n', 5) is not None
        except OSError:
            return False

    def _remove(self):
        self.virsh('destroy', self.name, check=False)
        self.virsh('undefine', self.name, check=False)


def read_until(recv, pattern, timeout):
    """Read with recv() until pattern matches the output; None on timeout."""
    regex = re.compile(pattern)
    data = b''
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = recv(4096)
        except (socket.timeout, TimeoutError):
            continue
        if not chunk:
            return None
        data += chunk
        if regex.search(data):
            return data
    return None


def shell_answers(url, name='shell', **connect_options):
    """Open a console URL and have the guest's shell compute a marker.

    The output up to the marker, or None when the guest never printed it.
    The marker is a sum the shell works out from a random number: neither
    the typed line nor an earlier session's output (replayed to a new
    session on a shared guest) holds it. connect_options go to
    websocket-client (sslopt for a wss:// URL).
    """
    base = random.randrange(10000, 90000)
    ws = websocket.create_connection(url, subprotocols=['binary'],
                                     timeout=5, **connect_options)
    try:
        ws.send_binary(b'echo %s-$((%d+42))\n' % (name.encode(), base))
        marker = rb'\n%s-%d\r?\n' % (re.escape(name.encode()), base + 42)
        return read_until(lambda _: ws.recv_data()[1], marker, 30)
    finally:
        ws.close()


class TestCA(fixtures.Fixture):
    """A throwaway certificate authority and a server certificate it
    signed for 127.0.0.1, made with openssl: what an operator configures
    as [DEFAULT] cert and key, and what a client trusts (ca)."""

    def _setUp(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        self.ca = os.path.join(tmp, 'ca.pem')
        self.cert = os.path.join(tmp, 'proxy.pem')
        self.key = os.path.join(tmp, 'proxy.key')
        ca_key = os.path.join(tmp, 'ca.key')
        request = os.path.join(tmp, 'proxy.csr')
        extensions = os.path.join(tmp, 'proxy.ext')
        with open(extensions, 'w') as f:
            f.write('subjectAltName = IP:127.0.0.1\n'
                    'basicConstraints = critical, CA:FALSE\n'
                    'keyUsage = critical, digitalSignature, '
                    'keyEncipherment\n'
                    'extendedKeyUsage = serverAuth\n'
                    'subjectKeyIdentifier = hash\n'
                    'authorityKeyIdentifier = keyid\n')
        for command in (
                ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days',
                 '2', '-subj', '/CN=serialproxy test CA', '-keyout', ca_key,
                 '-out', self.ca, '-addext',
                 'basicConstraints=critical,CA:TRUE', '-addext',
                 'keyUsage=critical,keyCertSign,cRLSign'],
                ['req', '-newkey', 'rsa:2048', '-nodes', '-subj',
                 '/CN=127.0.0.1', '-keyout', self.key, '-out', request],
                ['x509', '-req', '-in', request, '-CA', self.ca, '-CAkey',
                 ca_key, '-CAcreateserial', '-days', '2', '-out',
                 self.cert, '-extfile', extensions]):
            subprocess.run(['openssl', *command], check=True,
                           capture_output=True, cwd=tmp)


class RabbitVhost(fixtures.Fixture):
    """A RabbitMQ vhost of our own, so tests never see others' queues."""

    def _setUp(self):
        self.vhost = 'serialproxy-func-' + uuid.uuid4().hex[:8]
        subprocess.run(['rabbitmqctl', '-q', 'add_vhost', self.vhost],
                       check=True)
        self.addCleanup(subprocess.run,
                        ['rabbitmqctl', '-q', 'delete_vhost', self.vhost],
                        stdout=subprocess.DEVNULL)
        subprocess.run(['rabbitmqctl', '-q', 'set_permissions', '-p',
                        self.vhost, 'guest', '.*', '.*', '.*'], check=True)
        self.url = RABBIT.rstrip('/') + '/' + self.vhost


class SQLDatabase(fixtures.Fixture):
    """A database of our own on a real PostgreSQL or MariaDB server."""

    def __init__(self, backend):
        self.backend = backend

    def _setUp(self):
        server = sa.engine.make_url(SQL_SERVERS[self.backend])
        name = 'sp_test_' + uuid.uuid4().hex[:12]
        create = 'CREATE DATABASE ' + name
        drop = 'DROP DATABASE ' + name
        if self.backend == 'mysql':
            create += ' CHARACTER SET utf8mb4'
        else:
            # Services of a test may still hold connections.
            drop += ' WITH (FORCE)'
        engine = sa.create_engine(server, isolation_level='AUTOCOMMIT',
                                  poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(create))
        except sa.exc.OperationalError as exc:
            raise AssertionError(
                '%s is not reachable at %s (tools/test-setup.sh starts it; '
                'SERIALPROXY_TEST_%s_URL names another): %s' % (
                    self.backend, server.render_as_string(),
                    self.backend.upper(), exc.orig))
        self.addCleanup(self._drop, engine, drop)
        self.url = server.set(database=name).render_as_string(
            hide_password=False)

    @staticmethod
    def _drop(engine, drop):
        with engine.connect() as connection:
            connection.execute(sa.text(drop))
        engine.dispose()


class Deployment(fixtures.Fixture):
    """A config file and the service processes that read it."""

    def __init__(self, transport_url=None, options=None, database=None,
                 bin_dir=BIN, cwd=None, env=None):
        """options: {section: {name: value}} added to the config file.

        database: 'postgresql' or 'mysql' for a database on that server;
        SQLite under the state path otherwise. bin_dir, cwd and env: where
        the service commands are and how they run (an installed copy
        elsewhere); the test's own venv, directory and environment by
        default.
        """
        self.transport_url = transport_url
        self.database = database
        self.options = options or {}
        self.bin_dir = bin_dir
        self.cwd = cwd
        self.env = env
        self.api_port = free_port()
        self.proxy_port = free_port()
        self.admin_port = free_port()

    def _setUp(self):
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.host = 'func-compute-' + uuid.uuid4().hex[:6]
        config = configparser.ConfigParser()
        config['DEFAULT'] = {
            'host': self.host,
            'state_path': self.dir,
            'debug': 'true',
            'instance_report_interval': '2',
        }
        if self.transport_url:
            config['DEFAULT']['transport_url'] = self.transport_url
        # Functional tests of the console path are not about Keystone:
        # tests/unit/api runs keystonemiddleware with its own fixture.
        config['api'] = {'listen': '127.0.0.1', 'port': str(self.api_port),
                         'auth_strategy': 'noauth'}
        config['serial_console'] = {
            'serialproxy_host': '127.0.0.1',
            'serialproxy_port': str(self.proxy_port),
            'base_url': 'ws://127.0.0.1:%d/' % self.proxy_port,
        }
        config['console'] = {'admin_port': str(self.admin_port)}
        config['libvirt'] = {'connection_uri': LIBVIRT_URI}
        if self.database:
            config['database'] = {
                'connection': self.useFixture(
                    SQLDatabase(self.database)).url}
        for section, values in self.options.items():
            if section != 'DEFAULT' and not config.has_section(section):
                config.add_section(section)
            config[section].update({k: str(v) for k, v in values.items()})
        self.config_file = os.path.join(self.dir, 'serialproxy.conf')
        with open(self.config_file, 'w') as f:
            config.write(f)
        self.starts = {}
        # Stopped before the TempDir goes, consoleauth last, to answer the
        # lease releases of stopping proxies. Each stops in parallel with
        # the others: paid one after the other, the drains of
        # oslo.messaging listeners were most of a test's time.
        self.services = self.useFixture(services.Services(
            self.dir, stop_last=['serialproxy-consoleauth']))

    def command(self, name, *args, config_files=()):
        files = [self.config_file, *config_files]
        return [os.path.join(self.bin_dir, name),
                *[arg for f in files for arg in ('--config-file', f)], *args]

    def run(self, name, *args, check=True):
        return subprocess.run(self.command(name, *args), check=check,
                              capture_output=True, text=True, cwd=self.cwd,
                              env=self.env)

    def start(self, name, label=None, **overrides):
        """Start a service; overrides are {section: {name: value}}.

        A restarted service gets a log of its own: label.log, label.1.log...
        """
        label = label or name
        self.starts[label] = run = self.starts.get(label, -1) + 1
        log_name = label + ('.%d' % run if run else '') + '.log'
        extra = []
        if overrides:
            config = configparser.ConfigParser()
            config.read_dict({g: {k: str(v) for k, v in o.items()}
                              for g, o in overrides.items()})
            extra.append(os.path.join(self.dir, label + '.conf'))
            with open(extra[0], 'w') as f:
                config.write(f)
        return self.services.start(
            label, self.command(name, config_files=extra), env=self.env,
            cwd=self.cwd, log_name=log_name)

    # A detail reading a log when asked, whose keep() saves it first.
    _log_detail = staticmethod(services.log_detail)

    def start_proxy(self, label, port, workers=1):
        """Another proxy of the same deployment, under its own host name."""
        return self.start('serialproxy-proxy', label=label,
                          DEFAULT={'host': label},
                          serial_console={'serialproxy_port': port},
                          console={'admin_port': 0,
                                   'workers': workers})

    def stop(self, proc, signum=signal.SIGTERM, wait=True):
        """Stop one started process now; SIGKILL to have it crash.

        A SIGTERM must still end it cleanly (checked at teardown).
        wait=False: return at once, for a test that watches it stop.
        """
        self.services.stop(proc, signum, wait=wait)

    def expect_log_error(self, pattern, reason, label=None):
        """Declare an error a service logs because the test makes it:
        see services.Services.expect_log_error."""
        self.services.expect_log_error(pattern, reason, label)

    @property
    def processes(self):
        """Every started service, read as (label, process, log path)."""
        return self.services.started

    def wait_ready(self, timeout=60):
        """Wait until every running process logged that it is serving
        (one the test stopped, e.g. a benchmark's uwsgi before the
        built-in server again, is not waited for)."""
        def ready():
            self.check_alive()
            for _, proc, path in self.processes:
                if proc.poll() is not None:
                    continue
                with open(path, errors='replace') as f:
                    if 'Ready: every service' not in f.read():
                        return False
            return True
        wait_for(ready, timeout, 'the services to be ready')

    def console_url(self, instance_uuid):
        """A console URL from the API, once the instance is registered."""
        path = '/v2.1/servers/%s/remote-consoles' % instance_uuid
        body = {'remote_console': {'protocol': 'serial', 'type': 'serial'}}

        def ask():
            self.check_alive()
            # remote-consoles exists from microversion 2.6 on.
            status, reply = self.api_request('POST', path, body,
                                             version='2.6')
            # 404 until the compute agent's first report has landed.
            return (status, reply) if status not in (None, 404) else None
        status, reply = wait_for(ask, 60, 'the console URL')
        if status != 200:
            raise AssertionError('API answered %s: %s' % (status, reply))
        return json.loads(reply)['remote_console']['url']

    def logs(self):
        text = ''
        for name, _, path in self.processes:
            with open(path, errors='replace') as f:
                text += f.read()
        return text

    def check_alive(self):
        self.services.check_alive()

    def api_request(self, method, path, body=None, version=None,
                    token=None):
        """token: noauth's "user_id:project_id" (a member of that
        project); the admin by default."""
        data = None if body is None else json.dumps(
            body).encode()
        headers = {'Content-Type': 'application/json'}
        if token:
            headers['X-Auth-Token'] = token
        if version:
            headers['OpenStack-API-Version'] = 'compute %s' % version
        req = urllib.request.Request(
            'http://127.0.0.1:%d%s' % (self.api_port, path), data=data,
            method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return None, b''


class AllInOneWithGuest(fixtures.Fixture):
    """serialproxy-all and a guest owned by project_id/user_id, ready once
    the guest is in the instance registry."""

    def __init__(self, project_id, user_id):
        self.project_id = project_id
        self.user_id = user_id

    def _setUp(self):
        self.guest = self.useFixture(Guest(project_id=self.project_id,
                                           user_id=self.user_id))
        self.deployment = self.useFixture(Deployment())
        self.deployment.start('serialproxy-all')
        self.deployment.wait_ready()
        # The compute agent reports its instances right after start.
        wait_for(self._guest_registered, 60,
                 'the guest in the instance registry')

    def _guest_registered(self):
        self.deployment.check_alive()
        status, _ = self.deployment.api_request(
            'GET', '/v2.1/servers/%s' % self.guest.uuid)
        return status == 200


class SharedWorldTestCase(testcase.TestCase):
    """Tests that share one world, set up once for their class.

    A QEMU guest booting under TCG is the slow part of a functional test;
    the tests of such a class take care to leave the world as they found
    it. make_world() returns the fixture; it cleans up after itself when
    its set-up fails.
    """

    @classmethod
    def make_world(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.world = cls.make_world()
        with testcase.limited():
            cls.world.setUp()

    @classmethod
    def tearDownClass(cls):
        # The world's services are checked here (services.py): a failure
        # is the class's, reported as its tearDownClass.
        with testcase.limited():
            cls.world.cleanUp()
        super().tearDownClass()
