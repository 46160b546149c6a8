"""Nova-style fault bodies: the one place exceptions become HTTP answers."""

import json
import urllib.parse

import webob

from serialproxy import exception

# The body key Nova uses for each status, so clients parse ours unchanged.
_FAULT_NAMES = {
    400: 'badRequest',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'itemNotFound',
    405: 'badMethod',
    409: 'conflictingRequest',
    413: 'overLimit',
    415: 'badMediaType',
    501: 'notImplemented',
    503: 'serviceUnavailable',
}


def fault(code, message):
    name = _FAULT_NAMES.get(code, 'computeFault')
    body = {name: {'code': code, 'message': message}}
    return webob.Response(status=code, content_type='application/json',
                          charset='utf-8', body=json.dumps(body).encode())


def undecodable_request(environ):
    """A 400 fault for a request whose path or query string is not UTF-8
    once its %-escapes are undone (``/%80``); None for one that is. webob
    raises UnicodeDecodeError reading such a path or query, a 500."""
    try:
        environ.get('PATH_INFO', '').encode('latin-1').decode('utf-8')
        urllib.parse.unquote_to_bytes(
            environ.get('QUERY_STRING', '')).decode('utf-8')
    except UnicodeError:
        return fault(400, 'The request path and query string must be '
                          'UTF-8 once percent-decoded.')
    return None


def from_exception(exc, admin=False):
    """The fault of an exception; only an admin's names compute hosts
    and file paths (see SerialProxyException.tenant_msg)."""
    if isinstance(exc, exception.SerialProxyException):
        return fault(exc.code,
                     exc.message if admin else exc.tenant_message())
    return fault(500, 'Unexpected API error. The server log has details.')
