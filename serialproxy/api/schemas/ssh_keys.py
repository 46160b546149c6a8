"""Body of the one-time SSH key request (our extension)."""

from serialproxy.ssh import keys

create = {
    'type': 'object',
    'properties': {
        'ssh_key': {
            'type': 'object',
            'properties': {
                # Checked as a key by the controller, for a reason that
                # says what is wrong with it.
                'public_key': {'type': 'string', 'minLength': 1,
                               'maxLength': keys.MAX_PUBLIC_KEY_CHARS},
                # QEMU guests have at most a few serial ports.
                'index': {'type': 'integer', 'minimum': 0, 'maximum': 9},
            },
            'required': ['public_key'],
            'additionalProperties': False,
        },
    },
    'required': ['ssh_key'],
    'additionalProperties': False,
}
