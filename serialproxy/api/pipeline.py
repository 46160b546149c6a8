"""The WSGI pipeline of serialproxy-api, from api-paste.ini.

api-paste.ini lists the middleware of each auth strategy; [api]
auth_strategy picks one, and [api] api_paste_config says where the file
is. CORS, request ids and proxy headers are oslo.middleware's.
"""

import os
import sys

from oslo_config import cfg
from oslo_middleware import cors
from oslo_middleware import request_id
import paste.deploy

from serialproxy import conf as sp_conf
from serialproxy import exception

CONF = sp_conf.CONF

# The file shipped in etc/serialproxy/ of the source tree, when no other
# is configured: the pipeline is code as much as config.
_SOURCE_PASTE_INI = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), 'etc', 'serialproxy', 'api-paste.ini')

# Headers a browser client (Horizon, a console page elsewhere) must be
# allowed to send and read for microversions and request ids to work.
_CORS_ALLOW_HEADERS = ['X-Auth-Token', 'X-Openstack-Request-Id',
                       'X-Identity-Status', 'X-Roles', 'X-Service-Catalog',
                       'X-User-Id', 'X-Tenant-Id', 'OpenStack-API-Version',
                       'X-OpenStack-Nova-API-Version']
_CORS_EXPOSE_HEADERS = ['X-Auth-Token', 'X-Openstack-Request-Id',
                        'X-Subject-Token', 'X-Service-Token',
                        'OpenStack-API-Version',
                        'X-OpenStack-Nova-API-Version']
_CORS_ALLOW_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH']


def set_cors_defaults():
    cors.set_defaults(allow_headers=_CORS_ALLOW_HEADERS,
                      expose_headers=_CORS_EXPOSE_HEADERS,
                      allow_methods=_CORS_ALLOW_METHODS)


class ComputeRequestId(request_id.RequestId):
    """x-openstack-request-id, and Nova's x-compute-request-id beside it
    for clients that still read the old name."""

    compat_headers = ['x-compute-request-id']


def cors_filter_factory(global_conf, **local_conf):
    """CORS configured from our CONF ([cors] section of our config)."""
    def make(app):
        return cors.CORS(app, CONF)
    return make


def pipeline_factory(loader, global_conf, **local_conf):
    """The pipeline named by [api] auth_strategy, built from the filters."""
    strategy = CONF.api.auth_strategy
    if strategy not in local_conf:
        raise exception.SerialProxyException(
            'api-paste.ini has no pipeline for auth_strategy %s' % strategy)
    names = local_conf[strategy].split()
    app = loader.get_app(names[-1])
    for name in reversed(names[:-1]):
        app = loader.get_filter(name)(app)
    return app


def paste_config_path():
    """Where api-paste.ini is: [api] api_paste_config, searched for when
    relative beside the config files, in the current directory, in
    <prefix>/etc/serialproxy (where setup.cfg installs it) and in the
    source tree."""
    path = CONF.api.api_paste_config
    if os.path.isabs(path):
        candidates = [path]
    else:
        try:
            found = CONF.find_file(path)
        except cfg.NotInitializedError:
            found = None  # no config files parsed: nothing to look beside
        candidates = [found, path,
                      os.path.join(sys.prefix, 'etc', 'serialproxy', path)]
        if os.path.basename(path) == 'api-paste.ini':
            candidates.append(_SOURCE_PASTE_INI)
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            return os.path.abspath(candidate)
    raise exception.SerialProxyException(
        'Cannot find the API pipeline config %s ([api] api_paste_config)'
        % path)


def load_app(name='serialproxy-api'):
    """The WSGI application of serialproxy-api."""
    set_cors_defaults()
    return paste.deploy.loadapp('config:%s' % paste_config_path(),
                                name=name)
