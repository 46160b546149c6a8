"""Request plumbing shared by controllers: JSON bodies, success statuses.

The router owns dispatch and error mapping; this module owns what a
request carries into a controller method (context, microversion, body).
"""

import json
import re

import webob

from serialproxy import exception

# Our bodies are a few hundred bytes; anything near this is not a console
# request, and is refused before it is read in full.
MAX_BODY_BYTES = 64 * 1024

CONTEXT_KEY = 'serialproxy.context'


class Request(webob.Request):
    """A request with the caller's context and negotiated microversion."""

    api_version = None

    @property
    def context(self):
        ctxt = self.environ.get(CONTEXT_KEY)
        if ctxt is None:
            # Only a pipeline without an auth filter gets here: refuse
            # rather than act with nobody's authority.
            raise exception.Unauthorized()
        return ctxt

    def json_body_or_none(self):
        """The parsed JSON body; None when there is none at all."""
        if self.content_length is not None and \
                self.content_length > MAX_BODY_BYTES:
            raise exception.RequestTooLarge(limit=MAX_BODY_BYTES)
        raw = self.body_file.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise exception.RequestTooLarge(limit=MAX_BODY_BYTES)
        if not raw.strip():
            return None
        content_type = self.content_type
        if content_type and content_type != 'application/json':
            raise exception.InvalidContentType(
                content_type=content_type[:64])
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise exception.Invalid(
                'Malformed request body: it is not valid JSON.')


def action(*names):
    """Mark a controller method as the server action(s) names (POST
    .../action with body {name: {...}}), as Nova's @wsgi.action does."""
    def decorate(fn):
        fn.wsgi_actions = names
        return fn
    return decorate


def response(status):
    """The success status of a controller method, when not 200."""
    def decorate(fn):
        fn.status_code = status
        return fn
    return decorate


_TOKEN_PATH = re.compile(r'(/os-console-auth-tokens/)[^/?\s]+')


def redact_path(path):
    """path (or a request line) without a console token in it, for logs."""
    return _TOKEN_PATH.sub(r'\1***', path)
