"""The REST API as the command-line tools call it: one JSON request,
and the reason of a refusal as the API worded it."""

import json
import os
import urllib.error
import urllib.request


class APIError(Exception):
    """The API refused (status is its HTTP status) or could not be
    reached (status None); the message is for the user."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def add_arguments(parser):
    """--api-url and --token, from the environment by default."""
    parser.add_argument('--api-url',
                        default=os.environ.get('SERIALPROXY_API_URL',
                                               'http://127.0.0.1:8790'),
                        help='serialproxy API endpoint '
                             '($SERIALPROXY_API_URL)')
    parser.add_argument('--token', default=os.environ.get('OS_AUTH_TOKEN'),
                        help='Keystone token ($OS_AUTH_TOKEN)')


def request(api_url, token, method, path, body=None, timeout=60):
    """The API's JSON answer to method path, or APIError."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers['Content-Type'] = 'application/json'
    if token:
        headers['X-Auth-Token'] = token
    req = urllib.request.Request(api_url.rstrip('/') + path, data=data,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        raise APIError('%d %s' % (exc.code, fault_message(exc.read())),
                       status=exc.code)
    except (OSError, ValueError) as exc:
        raise APIError('cannot reach the API at %s: %s' % (api_url, exc))


def fault_message(body):
    try:
        (fault,) = json.loads(body).values()
        return fault['message']
    except (ValueError, TypeError, KeyError, AttributeError):
        return body.decode('utf-8', 'replace')[:200]
