"""JSON-schema validation of request bodies and query strings.

Controllers declare a schema with a decorator, as in Nova; the first
violation becomes a 400 whose message names the field and the rule. The
offending value is echoed only when short: bodies never carry secrets,
but there is no reason to reflect a megabyte back.
"""

import functools

import jsonschema

from serialproxy.api import api_version
from serialproxy import exception

_MAX_ECHO = 64


def _path(error):
    return '/'.join(str(p) for p in error.absolute_path) or 'the body'


def _message(error, what):
    if error.validator == 'additionalProperties':
        # The message names the unexpected key; the path says inside what.
        where = ' at %s' % _path(error) if error.absolute_path else ''
        return 'Invalid input for %s%s: %s' % (what, where, error.message)
    if error.validator == 'required':
        return 'Invalid input for %s at %s: %s' % (
            what, _path(error), error.message)
    value = repr(error.instance)
    if len(value) > _MAX_ECHO:
        value = value[:_MAX_ECHO] + '...'
    if error.validator in ('pattern', 'format'):
        detail = 'it does not have the expected form'
    elif error.validator == 'enum':
        detail = 'it must be one of %s' % ', '.join(
            repr(v) for v in error.validator_value)
    else:
        detail = error.message if len(error.message) <= 200 else \
            'it breaks the %r rule' % error.validator
    return 'Invalid input for %s at %s. Value: %s. %s.' % (
        what, _path(error), value, detail.rstrip('.'))


def validate(validator, document, what='field'):
    """Raise ValidationError (400) for the first way document breaks the
    validator's schema.

    The first error by the path order of jsonschema's best_match, so the
    message points at the most specific field. Validators are built once,
    by the decorators: building one costs more than a validation.
    """
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        raise exception.ValidationError(_message(error, what))


def _applies(req, min_version, max_version):
    return req.api_version.matches(min_version or api_version.MIN_VERSION,
                                   max_version)


def schema(body_schema, min_version=None, max_version=None):
    """Validate the JSON body (keyword argument 'body') with body_schema."""
    validator = jsonschema.Draft7Validator(body_schema)

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self, req, *args, **kwargs):
            if _applies(req, min_version, max_version):
                validate(validator, kwargs.get('body'))
            return fn(self, req, *args, **kwargs)
        return wrapper
    return decorate


def query_schema(params_schema, min_version=None, max_version=None):
    """Validate the query string, as {name: [values...]}, with a schema."""
    validator = jsonschema.Draft7Validator(params_schema)

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self, req, *args, **kwargs):
            if _applies(req, min_version, max_version):
                query = {}
                for key, value in req.GET.items():
                    query.setdefault(key, []).append(value)
                validate(validator, query, what='query parameter')
            return fn(self, req, *args, **kwargs)
        return wrapper
    return decorate
