"""Body of the os-getConsoleOutput action, as Nova accepts it."""

get_console_output = {
    'type': 'object',
    'properties': {
        'os-getConsoleOutput': {
            'type': 'object',
            'properties': {
                # Lines from the end; -1 or null for all. Nova takes the
                # number as a string too.
                'length': {
                    'type': ['integer', 'string', 'null'],
                    'pattern': '^-?[0-9]{1,9}$',
                    'minimum': -1,
                    'maximum': 1000000,
                },
            },
            'additionalProperties': False,
        },
    },
    'required': ['os-getConsoleOutput'],
    'additionalProperties': False,
}
