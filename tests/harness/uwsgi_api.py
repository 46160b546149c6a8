"""serialproxy-api under uwsgi, from the sample a deployer starts with."""

import configparser
import os
import re

import fixtures

from tests.harness import fixtures as func_fixtures

SAMPLE = os.path.join(func_fixtures.ROOT, 'etc', 'serialproxy',
                      'serialproxy-api-uwsgi.ini')
UWSGI = os.path.join(func_fixtures.BIN, 'uwsgi')
WORKERS = 3


class UwsgiAPI(fixtures.Fixture):
    """uwsgi serving the API of a Deployment on its api_port, from the
    shipped sample with the socket and the number of workers changed."""

    def __init__(self, deployment, processes=WORKERS):
        self.deployment = deployment
        self.processes = processes

    def _setUp(self):
        ini = configparser.ConfigParser(interpolation=None)
        ini.read(SAMPLE)
        ini['uwsgi']['http-socket'] = '127.0.0.1:%d' % (
            self.deployment.api_port)
        ini['uwsgi']['processes'] = str(self.processes)
        directory = self.deployment.dir
        ini_path = os.path.join(directory, 'serialproxy-api-uwsgi.ini')
        with open(ini_path, 'w') as f:
            ini.write(f)
        env = dict(os.environ,
                   SERIALPROXY_CONFIG_FILE=self.deployment.config_file,
                   PYTHONPATH=os.pathsep.join(
                       filter(None, [func_fixtures.ROOT,
                                     os.environ.get('PYTHONPATH')])))
        # A service of the deployment, checked with the others at its end;
        # a benchmark starts several, one after the other.
        self.deployment.starts['uwsgi'] = run = \
            self.deployment.starts.get('uwsgi', -1) + 1
        log_name = 'uwsgi' + ('.%d' % run if run else '') + '.log'
        self.log_path = os.path.join(directory, log_name)
        self.proc = self.deployment.services.start(
            'uwsgi', [UWSGI, '--ini', ini_path], env=env, cwd=directory,
            log_name=log_name)
        self.addCleanup(self.deployment.stop, self.proc)
        func_fixtures.wait_for(self._ready, 60, 'uwsgi workers to load')

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError('uwsgi exited with %s' % self.proc.returncode)
        return len(self.loaded_pids()) == self.processes

    def log(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def worker_pids(self):
        return {int(pid) for pid in re.findall(
            r'spawned uWSGI worker \d+ \(pid: (\d+)', self.log())}

    def loaded_pids(self):
        return {int(pid) for pid in re.findall(
            r'API application loaded in process (\d+)', self.log())}
