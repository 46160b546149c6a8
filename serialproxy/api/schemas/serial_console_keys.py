"""Bodies of the SysRq and NMI calls of the serial console extension."""

from serialproxy import sysrq

send_sysrq = {
    'type': 'object',
    'properties': {
        'sysrq': {
            'type': 'object',
            'properties': {
                'key': {'type': 'string', 'enum': list(sysrq.KEYS)},
            },
            'required': ['key'],
            'additionalProperties': False,
        },
    },
    'required': ['sysrq'],
    'additionalProperties': False,
}

# No body at all, or {"nmi": {}}.
inject_nmi = {
    'type': ['object', 'null'],
    'properties': {
        'nmi': {
            'type': 'object',
            'properties': {},
            'additionalProperties': False,
        },
    },
    'additionalProperties': False,
}
