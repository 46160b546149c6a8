"""serialproxy-api as a WSGI application for a WSGI server (uwsgi).

init_application() does what serialproxy-api's main() does before it
serves: parse config, set up logging, create the RPC transport, load the
api-paste.ini pipeline. The config files come from the environment, as
OpenStack services' WSGI entry points take them: SERIALPROXY_CONFIG_FILE
(one path, or several separated by ";"), /etc/serialproxy/serialproxy.conf
when unset.

oslo.messaging must be initialised in the process that serves: its
connections and threads do not survive a fork. Run it with uwsgi's
lazy-apps = true, so that each worker imports the application after the
fork (etc/serialproxy/serialproxy-api-uwsgi.ini); loaded in the uwsgi
master, this refuses to start instead of serving with a broken transport.
"""

import atexit
import os
import sys
import time

from oslo_log import log as logging

from serialproxy.api import pipeline
from serialproxy.api import wsgi as api_wsgi
from serialproxy import config
from serialproxy import conf as sp_conf
from serialproxy import insecure_settings
from serialproxy import notifications
from serialproxy import rpc

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

CONFIG_FILE_ENV = 'SERIALPROXY_CONFIG_FILE'
DEFAULT_CONFIG_FILE = '/etc/serialproxy/serialproxy.conf'


def config_files():
    """The config files the environment names, in order."""
    value = os.environ.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE
    return [path.strip() for path in value.split(';') if path.strip()]


def _in_uwsgi_master():
    try:
        import uwsgi
    except ImportError:
        return False
    # Worker ids start at 1; 0 is the master, which would fork whatever
    # this import created.
    return uwsgi.worker_id() == 0


class AccessLog:
    """One log line per request, as serialproxy-api's own server logs
    them: through oslo.log (whose format shows the process id), without
    a console token in the path. The WSGI server's request log, which
    would show tokens, is meant to be off (uwsgi: disable-logging)."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status = []

        def start(status_line, headers, exc_info=None):
            status[:] = [status_line.split(' ', 1)[0]]
            return start_response(status_line, headers, exc_info)
        try:
            return self.application(environ, start)
        finally:
            path = environ.get('SCRIPT_NAME', '') + environ.get(
                'PATH_INFO', '')
            if environ.get('QUERY_STRING'):
                path += '?' + environ['QUERY_STRING']
            LOG.info('%s "%s %s" status %s in %.3fs request_id %s',
                     environ.get('REMOTE_ADDR', '-'),
                     environ.get('REQUEST_METHOD'),
                     api_wsgi.redact_path(path),
                     status[0] if status else '-',
                     time.monotonic() - started,
                     environ.get('openstack.request_id', '-'))


def init_application():
    """The API's WSGI application; call once per serving process."""
    if _in_uwsgi_master():
        raise RuntimeError(
            'serialproxy-api was loaded in the uwsgi master, before the '
            'workers fork: set lazy-apps = true')
    config.parse_args(['serialproxy-api'],
                      default_config_files=config_files())
    # The WSGI server, not [api] listen, says where the API listens.
    insecure_settings.warn_api(CONF, listener=False)
    rpc.init(CONF)
    notifications.init('serialproxy-api')
    atexit.register(rpc.cleanup)
    application = AccessLog(pipeline.load_app())
    LOG.info('API application loaded in process %d (config %s, python %s)',
             os.getpid(), ', '.join(CONF.config_file),
             sys.version.split()[0])
    return application
