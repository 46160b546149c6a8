"""Body of a serial console access switch (project or server level)."""

update = {
    'type': 'object',
    'properties': {
        'serial_console_access': {
            'type': 'object',
            'properties': {
                'enabled': {'type': 'boolean'},
            },
            'required': ['enabled'],
            'additionalProperties': False,
        },
    },
    'required': ['serial_console_access'],
    'additionalProperties': False,
}

# Our own API, new: unknown parameters are mistakes worth reporting.
no_query = {
    'type': 'object',
    'properties': {},
    'additionalProperties': False,
}
