"""Query strings of the console sessions extension."""

_BOOL = ['true', 'false', 'True', 'False', '1', '0', 'yes', 'no']

delete_query = {
    'type': 'object',
    'properties': {
        'revoke_tokens': {
            'type': 'array', 'minItems': 1, 'maxItems': 1,
            'items': {'type': 'string', 'enum': _BOOL},
        },
    },
    # Our own API, new: unknown parameters are mistakes worth reporting.
    'additionalProperties': False,
}

index_query = {
    'type': 'object',
    'properties': {},
    'additionalProperties': False,
}
