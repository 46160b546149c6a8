"""Query string of the serial console history."""

# Values stay strings here: serialproxy.compute.console_history says why
# one is not an integer, with a better reason than a pattern could.
_ONE = {'type': 'array', 'minItems': 1, 'maxItems': 1,
        'items': {'type': 'string', 'maxLength': 32}}

show_query = {
    'type': 'object',
    'properties': {
        'start': _ONE,
        'max_bytes': _ONE,
    },
    # Our own API, new: unknown parameters are mistakes worth reporting.
    'additionalProperties': False,
}
