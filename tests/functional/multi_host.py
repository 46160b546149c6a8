"""Several hosts on one machine: network namespaces, as doc/deployment.rst
lays a site out.

Each host of the guide's site is a network namespace with an address on
a bridge of the root namespace; the root namespace is the controller
(RabbitMQ, PostgreSQL, the API and consoleauth) at the bridge's own
address. A compute host is its own hypervisor: a per-user libvirt daemon
(qemu:///session, started inside the host's namespace as an unprivileged
user) whose QEMU listens on that host's address, with the guest booted
from the test image.

The services read the files the guide shows, doc/deployment/*, with the
guide's example addresses, names and secrets replaced by this world's;
the commands are the ExecStart lines of the guide's systemd units. What
only a test needs (state paths, noauth, the per-user libvirt) is in one
small override file per host, passed after the guide's file.
"""

import configparser
import json
import os
import random
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid

import fixtures

from serialproxy.compute import domain_xml
from tests.harness import fixtures as func_fixtures
from tests.harness import services

SAMPLES = os.path.join(func_fixtures.ROOT, 'doc', 'deployment')
# The unprivileged user compute hosts' libvirt daemons and agents run as:
# libvirt gives root the system daemon even for qemu:///session.
NOBODY = 65534
RABBIT_PORT = 5672


class MissingComponent(AssertionError):
    """Something the multi-host world needs is not on this machine."""


def require(condition, what):
    """Fail, or skip outside CI, when a component is missing.

    CI must not count a test that did not run as passed; a developer
    without root or HAProxy may still run the rest of the suite.
    """
    if condition:
        return
    message = ('%s (tools/test-setup.sh provides it; the multi-host test '
               'runs as root)' % what)
    if os.environ.get('CI'):
        raise MissingComponent(message)
    raise unittest.SkipTest(message)


def require_components():
    """What the site needs of this machine, checked before building it
    (a skip raised inside a fixture's set-up would read as an error)."""
    require(os.geteuid() == 0, 'root, for network namespaces')
    for command in ('ip', 'haproxy', 'socat', 'openssl', 'setpriv',
                    'virsh', 'ssh', 'ssh-keygen', 'ssh-keyscan'):
        require(shutil.which(command), command)


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True,
                          **kwargs)


# The network ---------------------------------------------------------------

class Network(fixtures.Fixture):
    """A bridge in the root namespace and a namespace per host on it."""

    def __init__(self, hosts):
        """hosts: {name: last octet of its address}."""
        self.hosts = hosts

    def _setUp(self):
        tag = uuid.uuid4().hex[:4]
        self.bridge = 'spmh%s' % tag
        self.prefix = self._free_prefix()
        self.gateway = self.prefix + '.1'
        run(['ip', 'link', 'add', self.bridge, 'type', 'bridge'])
        self.addCleanup(run, ['ip', 'link', 'del', self.bridge])
        run(['ip', 'addr', 'add', self.gateway + '/24', 'dev', self.bridge])
        run(['ip', 'link', 'set', self.bridge, 'up'])
        self.namespaces = {}
        for index, (name, octet) in enumerate(sorted(self.hosts.items())):
            ns = 'spmh%s-%s' % (tag, name)
            outside, inside = 'spmh%s%dh' % (tag, index), 'spmh%s%dn' % (
                tag, index)
            run(['ip', 'netns', 'add', ns])
            self.addCleanup(run, ['ip', 'netns', 'del', ns])
            run(['ip', 'link', 'add', outside, 'type', 'veth', 'peer',
                 'name', inside])
            run(['ip', 'link', 'set', outside, 'master', self.bridge, 'up'])
            run(['ip', 'link', 'set', inside, 'netns', ns])
            run(['ip', '-n', ns, 'addr', 'add',
                 '%s.%d/24' % (self.prefix, octet), 'dev', inside])
            run(['ip', '-n', ns, 'link', 'set', inside, 'up'])
            run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
            self.namespaces[name] = ns

    @staticmethod
    def _free_prefix():
        """A 10.x.y /24 no interface of this machine is on."""
        used = run(['ip', '-4', '-o', 'addr']).stdout
        while True:
            prefix = '10.%d.%d' % (random.randrange(200, 250),
                                   random.randrange(1, 255))
            if (' %s.' % prefix) not in used:
                return prefix

    def address(self, host):
        return '%s.%d' % (self.prefix, self.hosts[host])

    def inside(self, host):
        """The command prefix that runs a command on host."""
        return ['ip', 'netns', 'exec', self.namespaces[host]]


class TCPForward(fixtures.Fixture):
    """listen_host:port of the root namespace relayed to 127.0.0.1:port.

    The machine's RabbitMQ listens on loopback only; the other hosts
    reach it at the controller's address, as they would on a site.
    """

    def __init__(self, listen_host, port):
        self.listen_host = listen_host
        self.port = port

    def _setUp(self):
        proc = subprocess.Popen(
            ['socat', 'TCP-LISTEN:%d,bind=%s,reuseaddr,fork'
             % (self.port, self.listen_host),
             'TCP:127.0.0.1:%d' % self.port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(func_fixtures.terminate, proc)
        func_fixtures.wait_for(self._listening, 10,
                               'the forward on %s:%d' % (self.listen_host,
                                                         self.port))

    def _listening(self):
        address = '%s:%d' % (self.listen_host, self.port)
        return bool(run(['ss', '-Hltn', 'src', address]).stdout.strip())


# TLS ---------------------------------------------------------------------

def throwaway_tls(directory, address, name):
    """A CA and, signed by it, a certificate for name and address.

    Returns (CA certificate path, HAProxy's PEM: certificate then key).
    """
    ca_key = os.path.join(directory, 'ca.key')
    ca_cert = os.path.join(directory, 'ca.pem')
    key = os.path.join(directory, 'server.key')
    csr = os.path.join(directory, 'server.csr')
    cert = os.path.join(directory, 'server.crt')
    ext = os.path.join(directory, 'server.ext')
    run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
         '-days', '1', '-subj', '/CN=serialproxy test CA',
         '-keyout', ca_key, '-out', ca_cert])
    run(['openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj',
         '/CN=%s' % name, '-keyout', key, '-out', csr])
    with open(ext, 'w') as f:
        f.write('subjectAltName = DNS:%s, IP:%s\n'
                'extendedKeyUsage = serverAuth\n' % (name, address))
    run(['openssl', 'x509', '-req', '-in', csr, '-CA', ca_cert, '-CAkey',
         ca_key, '-CAcreateserial', '-days', '1', '-extfile', ext,
         '-out', cert])
    pem = os.path.join(directory, 'console.pem')
    with open(pem, 'w') as out:
        for part in (cert, key):
            with open(part) as f:
                out.write(f.read())
    return ca_cert, pem


# The guide's files -----------------------------------------------------

def render(sample, replacements, destination):
    """The guide's sample file with its example values replaced.

    Each example value must be in the sample: a guide that changes its
    examples fails here instead of running something else. Values are
    replaced whole (10.0.0.1 is not part of 10.0.0.11), longest first,
    in one pass.
    """
    with open(os.path.join(SAMPLES, sample)) as f:
        text = f.read()
    olds = sorted(replacements, key=len, reverse=True)
    pattern = re.compile(r'(?<![\w.])(%s)(?!\w)'
                         % '|'.join(re.escape(old) for old in olds))
    found = set(pattern.findall(text))
    missing = [old for old in olds if old not in found]
    if missing:
        raise AssertionError('doc/deployment/%s no longer contains %s'
                             % (sample, ', '.join(missing)))
    with open(destination, 'w') as f:
        f.write(pattern.sub(lambda m: replacements[m.group(1)], text))
    return destination


def unit_command(service, config_file, override_file):
    """argv of the guide's systemd unit of service, with our paths."""
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str
    unit.read(os.path.join(SAMPLES, 'systemd', service + '.service'))
    argv = shlex.split(unit['Service']['ExecStart'])
    argv[0] = os.path.join(func_fixtures.BIN, os.path.basename(argv[0]))
    argv = [config_file if arg == '/etc/serialproxy/serialproxy.conf'
            else arg for arg in argv]
    if config_file not in argv:
        raise AssertionError('%s.service no longer reads '
                             '/etc/serialproxy/serialproxy.conf' % service)
    return argv + ['--config-file', override_file]


def write_ini(path, sections):
    config = configparser.ConfigParser()
    config.read_dict({s: {k: str(v) for k, v in o.items()}
                      for s, o in sections.items()})
    with open(path, 'w') as f:
        config.write(f)
    return path


# Processes ---------------------------------------------------------------

class Processes(services.Services):
    """The site's service processes, checked at the end as every test's.

    They are stopped together (SIGTERM to all, then the wait), as a site
    shuts down: one by one, each would wait for the others' drain.
    """

    def start(self, label, argv, env=None, **kwargs):
        return super().start(label, argv, env=env, cwd=self.directory,
                             **kwargs)

    def wait_ready(self, labels, marker='Ready: every service', timeout=60):
        paths = {label: path for label, _, path in self.started}

        def ready():
            self.check_alive()
            for label in labels:
                with open(paths[label], errors='replace') as f:
                    if marker not in f.read():
                        return False
            return True
        func_fixtures.wait_for(ready, timeout, '%s to be ready'
                               % ', '.join(labels))


class UserLibvirt(fixtures.Fixture):
    """The environment of a per-user libvirt daemon, and its end.

    libvirt starts the daemon (and its virtlogd) on first use, in the
    network namespace of the client that started it; we stop both by the
    pid files it writes, once the guests are gone.
    """

    def __init__(self, directory):
        self.directory = directory

    def _setUp(self):
        self.runtime_dir = os.path.join(self.directory, 'run')
        os.makedirs(self.runtime_dir, mode=0o700)
        for path in (self.directory, self.runtime_dir):
            os.chown(path, NOBODY, NOBODY)
        self.env = dict(os.environ, HOME=self.directory,
                        XDG_RUNTIME_DIR=self.runtime_dir)
        self.addCleanup(self._stop_daemons)

    def _stop_daemons(self):
        for name in ('libvirtd', 'virtlogd'):
            pid_file = os.path.join(self.runtime_dir, 'libvirt',
                                    name + '.pid')
            try:
                with open(pid_file) as f:
                    pid = int(f.read().strip())
                os.kill(pid, 15)
            except (FileNotFoundError, ValueError, ProcessLookupError):
                continue
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and os.path.exists(
                    '/proc/%d/cmdline' % pid) and open(
                    '/proc/%d/cmdline' % pid).read():
                time.sleep(0.1)


def _in_parallel(functions):
    threads = [threading.Thread(target=f) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class GuestBoot:
    """A guest set up in a thread of its own, after its libvirt daemon.

    libvirt_started is set once the daemon answers, so that nothing else
    races to start it.
    """

    def __init__(self, guest, start_libvirt, env):
        self.guest = guest
        self.start_libvirt = start_libvirt
        self.env = env
        self.libvirt_started = threading.Event()
        self.booted = False
        self.error = None
        self.thread = threading.Thread(target=self._boot)

    def start(self):
        self.thread.start()

    def _boot(self):
        try:
            run(self.start_libvirt, env=self.env)
            self.libvirt_started.set()
            self.guest.setUp()
            self.booted = True
        except BaseException as exc:
            self.error = exc

    def wait(self):
        self.thread.join()
        if self.error is not None:
            raise self.error

    def clean_up(self):
        if self.thread.ident is not None:
            self.thread.join()
        if self.booted:
            self.guest.cleanUp()


# The site ------------------------------------------------------------------

# The guide's example values (doc/deployment/*) that this world replaces.
CONTROLLER = '10.0.0.11'
CONSOLE_NODES = {'console1': '10.0.0.21', 'console2': '10.0.0.22'}
COMPUTE_HOSTS = {'compute1': '10.0.0.31', 'compute2': '10.0.0.32'}
PUBLIC_ADDRESS = '203.0.113.10'
# The load balancer's internal address: the proxies' trusted_proxies.
BALANCER_ADDRESS = '10.0.0.10'
PUBLIC_NAME = 'console.example.com'
HOST_KEY_DIR = '/etc/serialproxy/ssh'
# The proxy's host key files, as the guide makes them with ssh-keygen.
HOST_KEY_TYPES = {'ssh_host_ed25519_key': ['-t', 'ed25519'],
                  'ssh_host_ecdsa_key': ['-t', 'ecdsa', '-b', '256']}
HOSTS = {'lb': 10, 'console1': 21, 'console2': 22, 'compute1': 31,
         'compute2': 32}


class Traversable(fixtures.Fixture):
    """Every directory above path searchable by other users, as it was
    afterwards.

    The compute hosts run their commands from the test's virtualenv as an
    unprivileged user, and tox makes its .tox directory 0700.
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def _setUp(self):
        directory = self.path
        while directory != os.path.dirname(directory):
            mode = os.stat(directory).st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)
                self.addCleanup(os.chmod, directory, stat.S_IMODE(mode))
            directory = os.path.dirname(directory)


class Site(fixtures.Fixture):
    """doc/deployment.rst's site: a load balancer, two console nodes,
    two compute hosts with a guest each, and the controller (this root
    namespace) with the API, two consoleauth processes, RabbitMQ and
    PostgreSQL.
    """

    def _setUp(self):
        require_components()
        self.net = self.useFixture(Network(HOSTS))
        self.controller = self.net.gateway
        self.public = self.net.address('lb')
        self.dir = self.useFixture(fixtures.TempDir()).path
        # Compute hosts' files are read by an unprivileged user.
        os.chmod(self.dir, 0o755)
        for path in (func_fixtures.BIN, sys.prefix):
            self.useFixture(Traversable(path))
        vhost = self.useFixture(func_fixtures.RabbitVhost()).vhost
        self.useFixture(TCPForward(self.controller, RABBIT_PORT))
        self.db = self.useFixture(func_fixtures.SQLDatabase('postgresql'))
        self.libvirt = {name: self.useFixture(UserLibvirt(os.path.join(
            self._host_dir(name, owner=NOBODY), 'libvirt')))
            for name in COMPUTE_HOSTS}
        # Services stop first, before what they use goes away.
        self.processes = self.useFixture(Processes(self.dir))
        self.rabbit = {'serialproxy:RABBIT_PASS': 'guest:guest',
                       '%d/serialproxy' % RABBIT_PORT: '%d/%s' % (
                           RABBIT_PORT, vhost),
                       CONTROLLER: self.controller}
        self.guests = {}
        self._make_host_keys()
        # Booting under TCG is the slow part: the rest starts meanwhile.
        booting = [GuestBoot(*self._guest(name)) for name in COMPUTE_HOSTS]
        self.addCleanup(_in_parallel, [boot.clean_up for boot in booting])
        for boot in booting:
            boot.start()
        self._start_controller()
        for name in CONSOLE_NODES:
            self._start_console_node(name)
        self._start_load_balancer()
        # Agents after consoleauth: calls sent before it listens are lost.
        self.processes.wait_ready(['consoleauth1', 'consoleauth2'])
        for boot, name in zip(booting, COMPUTE_HOSTS):
            boot.libvirt_started.wait(60)
            self._start_compute_agent(name)
        for boot in booting:
            boot.wait()
        self.processes.wait_ready([label for label, _, _ in
                                   self.processes.started
                                   if label != 'haproxy'])
        func_fixtures.wait_for(self._backends_up, 30,
                               'HAProxy to see both console nodes up, for '
                               'websockets and SSH')
        for host, guest in self.guests.items():
            func_fixtures.wait_for(
                lambda: self.instance_host(guest.uuid) == host, 60,
                'the guest of %s in the instance registry' % host)

    # Hosts ---------------------------------------------------------------

    def _host_dir(self, name, owner=None):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.join(path, 'state'))
        if owner is not None:
            for p in (path, os.path.join(path, 'state')):
                os.chown(p, owner, owner)
        return path

    def _make_host_keys(self):
        """The guide's procedure: the SSH host keys made once, and their
        fingerprints, to compare with what every console node serves."""
        self.host_keys = os.path.join(self.dir, 'host-keys')
        os.makedirs(self.host_keys, mode=0o700)
        for name, key_type in HOST_KEY_TYPES.items():
            run(['ssh-keygen', '-q', *key_type, '-N', '', '-C', '', '-f',
                 os.path.join(self.host_keys, name)])
        self.host_key_fingerprints = sorted(
            run(['ssh-keygen', '-l', '-f', os.path.join(
                self.host_keys, name + '.pub')]).stdout.split()[1]
            for name in HOST_KEY_TYPES)

    def _install_host_keys(self, directory, private):
        """A copy of the host keys for a host: all of them for a console
        node, the .pub files for the API's host."""
        key_dir = os.path.join(directory, 'ssh')
        os.makedirs(key_dir, mode=0o700)
        for name in HOST_KEY_TYPES:
            for suffix, mode in (('', 0o600), ('.pub', 0o644)):
                if suffix == '' and not private:
                    continue
                path = os.path.join(key_dir, name + suffix)
                shutil.copyfile(os.path.join(self.host_keys, name + suffix),
                                path)
                os.chmod(path, mode)
        return key_dir

    def _overrides(self, directory, **sections):
        """The test-only settings of a host, read after the guide's."""
        sections.setdefault('DEFAULT', {}).update(
            state_path=os.path.join(directory, 'state'), debug='true')
        return write_ini(os.path.join(directory, 'test-overrides.conf'),
                         sections)

    def _compute_host(self, name):
        """(config file, override file, command prefix, environment) of
        a compute host, whose processes run as an unprivileged user."""
        directory = os.path.join(self.dir, name)
        config = os.path.join(directory, 'serialproxy.conf')
        if not os.path.exists(config):
            render('compute.conf', dict(
                self.rabbit, compute1=name,
                **{COMPUTE_HOSTS['compute1']: self.net.address(name)}),
                config)
            self._overrides(
                directory, DEFAULT={'instance_report_interval': 5},
                libvirt={'connection_uri': 'qemu:///session'})
        as_host = self.net.inside(name) + [
            'setpriv', '--reuid=%d' % NOBODY, '--regid=%d' % NOBODY,
            '--clear-groups']
        return (config, os.path.join(directory, 'test-overrides.conf'),
                as_host, self.libvirt[name].env)

    def _start_compute_agent(self, name):
        config, overrides, as_host, env = self._compute_host(name)
        self.processes.start(name, [
            *as_host, *unit_command('serialproxy-compute', config,
                                    overrides)], env=env)

    def _guest(self, name):
        """A compute host's guest, its console from the host's pool, and
        how to start that host's libvirt daemon."""
        config, overrides, as_host, env = self._compute_host(name)

        def use_pool_consoles(guest):
            # As an operator gives an existing domain its consoles.
            run([*as_host, os.path.join(func_fixtures.BIN,
                                        'serialproxy-manage'),
                 '--config-file', config, '--config-file', overrides,
                 'serial-console', 'add', guest.name, '--replace'],
                env=env)
            console, = domain_xml.tcp_serial_ports(
                guest.virsh('dumpxml', '--inactive', guest.name), None)
            guest.address, guest.port = console['host'], console['port']

        # Two guests boot at once under TCG, beside other tests' guests.
        guest = func_fixtures.Guest(
            boot_timeout=240, before_start=use_pool_consoles,
            libvirt_uri='qemu:///session', run_prefix=as_host, env=env)
        self.guests[name] = guest
        # The daemon starts in the namespace of its first client.
        return guest, [*as_host, 'virsh', '-c', 'qemu:///session',
                       'version'], env

    def _start_controller(self):
        directory = self._host_dir('controller')
        replacements = dict(self.rabbit, **{
            'postgresql+psycopg2://serialproxy:DB_PASS@%s/serialproxy'
            % CONTROLLER: self.db.url,
            PUBLIC_NAME: self.public,
            HOST_KEY_DIR: self._install_host_keys(directory, private=False)})
        # Keystone is another test's subject (test_keystone.py).
        overrides = self._overrides(directory,
                                    api={'auth_strategy': 'noauth'})
        config = render('controller.conf', replacements,
                        os.path.join(directory, 'serialproxy.conf'))
        run([os.path.join(func_fixtures.BIN, 'serialproxy-manage'),
             '--config-file', config, '--config-file', overrides, 'db',
             'sync'])
        self.processes.start('api', unit_command('serialproxy-api', config,
                                                 overrides))
        self.processes.start('consoleauth1', unit_command(
            'serialproxy-consoleauth', config, overrides))
        # The second controller's consoleauth: the same file, its own name.
        config2 = render('controller.conf', dict(
            replacements, controller1='controller2'),
            os.path.join(directory, 'serialproxy-controller2.conf'))
        self.processes.start('consoleauth2', unit_command(
            'serialproxy-consoleauth', config2, overrides))
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read(config)
        self.api_url = 'http://%s:%s' % (parsed['api']['listen'],
                                         parsed['api']['port'])

    def _start_console_node(self, name):
        directory = self._host_dir(name)
        address = self.net.address(name)
        config = render('proxy.conf', dict(
            self.rabbit, console1=name,
            **{CONSOLE_NODES['console1']: address,
               BALANCER_ADDRESS: self.net.address('lb'),
               HOST_KEY_DIR: self._install_host_keys(directory,
                                                     private=True)}),
            os.path.join(directory, 'serialproxy.conf'))
        self.processes.start(name, [
            *self.net.inside(name),
            *unit_command('serialproxy-proxy', config,
                          self._overrides(directory))])
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read(config)
        self.proxy_port = int(parsed['serial_console']['serialproxy_port'])
        self.ssh_port = int(parsed['ssh']['listen_port'])

    def _start_load_balancer(self):
        directory = self._host_dir('lb')
        self.ca, pem = throwaway_tls(directory, self.public, PUBLIC_NAME)
        self.stats_socket = os.path.join(directory, 'admin.sock')
        replacements = {PUBLIC_ADDRESS: self.public,
                        '/etc/haproxy/certs/%s.pem' % PUBLIC_NAME: pem,
                        '/run/haproxy/admin.sock': self.stats_socket}
        for name, example in CONSOLE_NODES.items():
            replacements[example] = self.net.address(name)
        config = render('haproxy.cfg', replacements,
                        os.path.join(directory, 'haproxy.cfg'))
        run(['haproxy', '-c', '-q', '-f', config])
        self.processes.start('haproxy', [*self.net.inside('lb'), 'haproxy',
                                         '-W', '-db', '-f', config])

    # Questions -----------------------------------------------------------

    def haproxy_stats(self, backend):
        """{server: its row of HAProxy's "show stat"} of a backend."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(self.stats_socket)
            sock.sendall(b'show stat\n')
            stats = b''
            while chunk := sock.recv(65536):
                stats += chunk
        lines = stats.decode().splitlines()
        header = lines[0].lstrip('# ').split(',')
        rows = [dict(zip(header, line.split(','))) for line in lines[1:]
                if line]
        return {row['svname']: row for row in rows
                if row['pxname'] == backend
                and row['svname'] in CONSOLE_NODES}

    def _backends_up(self):
        self.processes.check_alive()
        try:
            for backend in ('console_proxies', 'console_ssh'):
                stats = self.haproxy_stats(backend)
                if {name for name, row in stats.items()
                        if row['status'] == 'UP'} != set(CONSOLE_NODES):
                    return False
        except OSError:
            return False
        return True

    def log(self, label):
        path, = [p for name, _, p in self.processes.started if name == label]
        with open(path, errors='replace') as f:
            return f.read()

    def api_request(self, method, path, body=None, version=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {'Content-Type': 'application/json'}
        if version:
            headers['OpenStack-API-Version'] = 'compute %s' % version
        request = urllib.request.Request(self.api_url + path, data=data,
                                         method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def instance_host(self, instance_uuid):
        self.processes.check_alive()
        status, body = self.api_request('GET', '/v2.1/servers/%s'
                                        % instance_uuid)
        if status != 200:
            return None
        return json.loads(body)['server'].get('OS-EXT-SRV-ATTR:host')

    def console_url(self, instance_uuid):
        status, body = self.api_request(
            'POST', '/v2.1/servers/%s/remote-consoles' % instance_uuid,
            {'remote_console': {'protocol': 'serial', 'type': 'serial'}},
            version='2.6')
        if status != 200:
            raise AssertionError('API answered %s: %s' % (status, body))
        return json.loads(body)['remote_console']['url']

    def sessions(self, instance_uuid):
        status, body = self.api_request(
            'GET', '/v2.1/servers/%s/serial-console/sessions'
            % instance_uuid)
        if status != 200:
            raise AssertionError('API answered %s: %s' % (status, body))
        return json.loads(body)['sessions']
