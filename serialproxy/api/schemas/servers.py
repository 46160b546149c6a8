"""Query strings of the read-only servers view."""

_one = {'type': 'array', 'minItems': 1, 'maxItems': 1}


def _single(item_schema):
    return dict(_one, items=item_schema)


# Before 2.75 Nova ignores query parameters it does not know; so do we
# (clients send e.g. "deleted" or "changes-since"), but the ones we act on
# must make sense.
index_query = {
    'type': 'object',
    'properties': {
        'name': _single({'type': 'string', 'minLength': 1,
                         'maxLength': 255}),
        'status': _single({'type': 'string', 'maxLength': 32}),
        'limit': _single({'type': 'string', 'pattern': r'^[0-9]{1,9}$'}),
        'marker': _single({'type': 'string', 'maxLength': 255}),
        'all_tenants': _single({'type': 'string', 'maxLength': 8}),
        'project_id': _single({'type': 'string', 'maxLength': 255}),
        'tenant_id': _single({'type': 'string', 'maxLength': 255}),
    },
    'additionalProperties': True,
}
