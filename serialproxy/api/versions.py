"""Version discovery: what keystoneauth and the SDK read first.

Served without authentication, as Nova serves it, by a filter in front of
the auth filter (clients discover before they have a token for us).
"""

import json

import webob
import webob.dec

from serialproxy.api import api_version
from serialproxy.api import faults

# When v2.1 first appeared in Nova; clients only display it.
_UPDATED = '2013-07-23T11:33:21Z'


def version_v21(base_url):
    return {
        'id': 'v2.1',
        'status': 'CURRENT',
        'version': api_version.MAX_VERSION,
        'min_version': api_version.MIN_VERSION,
        'updated': _UPDATED,
        'links': [
            {'rel': 'self', 'href': base_url.rstrip('/') + '/v2.1/'},
            {'rel': 'describedby', 'type': 'text/html',
             'href': 'https://docs.openstack.org/api-ref/compute/'},
        ],
        'media-types': [{
            'base': 'application/json',
            'type': 'application/vnd.openstack.compute+json;version=2.1',
        }],
    }


def versions(base_url):
    """GET /: every API version (we have one)."""
    return {'versions': [version_v21(base_url)]}


def version(base_url):
    """GET /v2.1/: the one version, with its microversion range."""
    return {'version': version_v21(base_url)}


class VersionDiscovery:
    """Answers GET / and GET /v2.1[/]; passes everything else on."""

    _DOCUMENTS = {'': versions, '/': versions,
                  '/v2.1': version, '/v2.1/': version}

    def __init__(self, application):
        self.application = application

    @classmethod
    def factory(cls, global_conf, **local_conf):
        return cls

    @webob.dec.wsgify
    def __call__(self, req):
        refused = faults.undecodable_request(req.environ)
        if refused is not None:
            return refused
        document = self._DOCUMENTS.get(req.path_info)
        if document is None or req.method not in ('GET', 'HEAD'):
            return self.application
        body = json.dumps(document(req.application_url)).encode()
        return webob.Response(body=body, content_type='application/json',
                              charset='utf-8')
