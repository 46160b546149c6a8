"""A real Keystone for functional tests, and serialproxy-all signing in to it.

Keystone comes from PyPI into a virtualenv of its own (tools/test-setup.sh
makes .keystone-venv), so its pins never meet ours. Each Keystone fixture
bootstraps a fresh one on SQLite, serves it with that venv's uwsgi on a
loopback port and fills it as a small cloud would be: the admin of
bootstrap, a service user for keystonemiddleware, two projects with their
members and a reader, and our API in the catalog as Nova registers its
own (service type compute, public and internal endpoints ending in /v2.1).
"""

import configparser
import datetime
import grp
import json
import os
import pwd
import subprocess
import urllib.error
import urllib.request
import uuid

import fixtures
from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session
import openstack

from tests.harness import fixtures as func_fixtures
from tests.harness import services

VENV = os.environ.get('SERIALPROXY_KEYSTONE_VENV',
                      os.path.join(func_fixtures.ROOT, '.keystone-venv'))
REGION = 'RegionOne'
DOMAIN = 'Default'
# name: (project, role) of the users created besides bootstrap's admin.
USERS = {
    'serialproxy': ('service', 'service'),
    'demo-member': ('demo', 'member'),
    'demo-reader': ('demo', 'reader'),
    'other-member': ('other', 'member'),
}


class Keystone(fixtures.Fixture):
    """Keystone from .keystone-venv under uwsgi, with users and a catalog.

    compute_url: the public and internal URL of service type compute.
    After setUp: url, project_ids {name: id}, user_ids {name: id},
    password (every user's).
    """

    def __init__(self, compute_url):
        self.compute_url = compute_url
        self.port = func_fixtures.free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.password = uuid.uuid4().hex

    def _setUp(self):
        if not os.path.exists(self._bin('keystone-manage')):
            raise AssertionError(
                'no Keystone at %s: tools/test-setup.sh installs it '
                '(SERIALPROXY_KEYSTONE_VENV names another venv)' % VENV)
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.config_file = self._write_config()
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        # Each keystone-manage run takes seconds to import: only the
        # steps a token needs (no credential_setup: no credentials here).
        self._manage('db_sync')
        self._manage('fernet_setup', '--keystone-user', user,
                     '--keystone-group', group)
        self._manage('bootstrap', '--bootstrap-password', self.password,
                     '--bootstrap-username', 'admin',
                     '--bootstrap-project-name', 'admin',
                     '--bootstrap-role-name', 'admin',
                     '--bootstrap-service-name', 'keystone',
                     '--bootstrap-region-id', REGION,
                     '--bootstrap-public-url', self.url,
                     '--bootstrap-internal-url', self.url)
        self._serve()
        self._populate()

    def _bin(self, name):
        return os.path.join(VENV, 'bin', name)

    def _write_config(self):
        config = configparser.ConfigParser()
        keys = os.path.join(self.dir, 'fernet-keys')
        config.read_dict({
            'database': {'connection': 'sqlite:///%s' % os.path.join(
                self.dir, 'keystone.sqlite')},
            'token': {'provider': 'fernet'},
            'fernet_tokens': {'key_repository': keys},
            'fernet_receipts': {'key_repository': keys},
            # bcrypt's default cost makes each password sign-in slow.
            'identity': {'password_hash_rounds': '4'},
        })
        path = os.path.join(self.dir, 'keystone.conf')
        with open(path, 'w') as f:
            config.write(f)
        return path

    def _manage(self, *args):
        result = subprocess.run(
            [self._bin('keystone-manage'), '--config-file', self.config_file,
             *args], capture_output=True, text=True)
        if result.returncode:
            raise AssertionError('keystone-manage %s failed:\n%s' % (
                args[0], result.stderr))

    def _serve(self):
        # Checked at its end as our own services are (services.py).
        services_ = self.useFixture(services.Services(self.dir))
        self.expect_log_error = services_.expect_log_error
        # One process: SQLite. Its threads still serve keystonemiddleware
        # while a client signs in.
        self.proc = services_.start(
            'keystone-uwsgi',
            [self._bin('uwsgi'), '--http-socket', '127.0.0.1:%d' % self.port,
             '--module', 'keystone.wsgi.api:application',
             '--master', '--processes', '1', '--threads', '4',
             '--lazy-apps', '--need-app', '--die-on-term',
             '--buffer-size', '65535', '--disable-logging',
             # http-socket closes every connection after its answer: say
             # so, or clients reuse it and lose their next request.
             '--add-header', 'Connection: close'],
            cwd=self.dir,
            env=dict(os.environ, OS_KEYSTONE_CONFIG_FILES=self.config_file))
        self.log_path = services_.service(self.proc).log_path
        func_fixtures.wait_for(self._answers, 60, 'Keystone to answer')

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError('Keystone\'s uwsgi exited with %s'
                                 % self.proc.returncode)
        try:
            with urllib.request.urlopen(self.url + '/v3', timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _populate(self):
        conn = openstack.connect(
            auth_url=self.url, username='admin', password=self.password,
            project_name='admin', user_domain_name=DOMAIN,
            project_domain_name=DOMAIN, region_name=REGION,
            load_yaml_config=False, load_envvars=False)
        self.addCleanup(conn.close)
        identity = conn.identity
        roles = {role.name: role.id for role in identity.roles()}
        self.project_ids = {'admin': identity.find_project(
            'admin', ignore_missing=False).id}
        for name in sorted({project for project, _ in USERS.values()}):
            self.project_ids[name] = identity.create_project(
                name=name, domain_id='default').id
        self.user_ids = {}
        for name, (project, role) in USERS.items():
            user = identity.create_user(name=name, password=self.password,
                                        domain_id='default')
            self.user_ids[name] = user.id
            identity.assign_project_role_to_user(
                self.project_ids[project], user.id, roles[role])
        service = identity.create_service(name='serialproxy',
                                          type='compute', enabled=True)
        for interface in ('public', 'internal'):
            identity.create_endpoint(service_id=service.id,
                                     interface=interface, region_id=REGION,
                                     url=self.compute_url, enabled=True)

    def authtoken_options(self):
        """[keystone_authtoken] as a deployer writes it for our API."""
        project, _ = USERS['serialproxy']
        return {
            'www_authenticate_uri': self.url,
            'auth_url': self.url,
            'auth_type': 'password',
            'username': 'serialproxy',
            'password': self.password,
            'user_domain_name': DOMAIN,
            'project_name': project,
            'project_domain_name': DOMAIN,
            'region_name': REGION,
            'service_token_roles_required': 'true',
        }

    def cli_environ(self, user):
        """OS_* variables that sign user in with a password."""
        project, _ = USERS.get(user, ('admin', 'admin'))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        env.update({
            'OS_AUTH_URL': self.url,
            'OS_AUTH_TYPE': 'password',
            'OS_IDENTITY_API_VERSION': '3',
            'OS_USERNAME': user,
            'OS_PASSWORD': self.password,
            'OS_PROJECT_NAME': project,
            'OS_USER_DOMAIN_NAME': DOMAIN,
            'OS_PROJECT_DOMAIN_NAME': DOMAIN,
            'OS_REGION_NAME': REGION,
            'OS_INTERFACE': 'public',
        })
        return env

    def session(self, user):
        """A keystoneauth session signed in as user, in its project."""
        project, _ = USERS.get(user, ('admin', 'admin'))
        auth = v3.Password(auth_url=self.url, username=user,
                           password=self.password, project_name=project,
                           user_domain_name=DOMAIN,
                           project_domain_name=DOMAIN)
        return ks_session.Session(auth=auth)

    def expiring_token(self, user, lifetime):
        """(token, expires) of a token of user that expires in lifetime
        seconds, where Keystone's own tokens live an hour.

        Signed in with an application credential that expires then:
        Keystone ends the token's life with the credential's.
        """
        secret = uuid.uuid4().hex
        expires_at = (datetime.datetime.now(datetime.timezone.utc)
                      + datetime.timedelta(seconds=lifetime))
        credential = self.session(user).post(
            '%s/v3/users/%s/application_credentials' % (
                self.url, self.user_ids[user]),
            json={'application_credential': {
                'name': 'expiring-' + secret[:8], 'secret': secret,
                'expires_at': expires_at.strftime('%Y-%m-%dT%H:%M:%S.%f')}},
        ).json()['application_credential']
        auth = v3.ApplicationCredential(
            auth_url=self.url, application_credential_id=credential['id'],
            application_credential_secret=secret)
        session = ks_session.Session(auth=auth)
        return session.get_token(), session.auth.get_access(session).expires


def compute_request(url, token, method='GET', body=None, version='2.6'):
    """(status, headers, body) of one call to the API with a token."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        'X-Auth-Token': token, 'Content-Type': 'application/json',
        'OpenStack-API-Version': 'compute %s' % version})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
