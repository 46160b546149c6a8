"""Bodies of the console URL requests, as Nova's schemas accept them.

The enums are Nova's, so a valid Nova request for a console type we do
not serve gets "unavailable" rather than a schema error. "mode" is ours
(Nova's clients never send it): "view" asks for a watch-only URL.
"""

_PROTOCOLS_V26 = ['vnc', 'spice', 'rdp', 'serial']
_TYPES_V26 = ['novnc', 'xvpvnc', 'rdp-html5', 'spice-html5', 'serial']


def _remote_console(protocols, types):
    return {
        'type': 'object',
        'properties': {
            'remote_console': {
                'type': 'object',
                'properties': {
                    'protocol': {'type': 'string', 'enum': protocols},
                    'type': {'type': 'string', 'enum': types},
                    'mode': {'type': 'string', 'enum': ['view']},
                },
                'required': ['protocol', 'type'],
                'additionalProperties': False,
            },
        },
        'required': ['remote_console'],
        'additionalProperties': False,
    }


create_v26 = _remote_console(_PROTOCOLS_V26, _TYPES_V26)
# 2.8: VMware's WebMKS joins the enums.
create_v28 = _remote_console(_PROTOCOLS_V26 + ['mks'],
                             _TYPES_V26 + ['webmks'])

get_serial_console = {
    'type': 'object',
    'properties': {
        'os-getSerialConsole': {
            'type': 'object',
            'properties': {
                'type': {'type': 'string', 'enum': ['serial']},
            },
            'required': ['type'],
            'additionalProperties': False,
        },
    },
    'required': ['os-getSerialConsole'],
    'additionalProperties': False,
}


def _legacy_action(name, types):
    return {
        'type': 'object',
        'properties': {
            name: {
                'type': 'object',
                'properties': {'type': {'type': 'string', 'enum': types}},
                'required': ['type'],
                'additionalProperties': False,
            },
        },
        'required': [name],
        'additionalProperties': False,
    }


# Nova's other console actions: valid requests, for consoles we lack.
get_vnc_console = _legacy_action('os-getVNCConsole', ['novnc', 'xvpvnc'])
get_spice_console = _legacy_action('os-getSPICEConsole', ['spice-html5'])
get_rdp_console = _legacy_action('os-getRDPConsole', ['rdp-html5'])
other_console_actions = {'oneOf': [get_vnc_console, get_spice_console,
                                   get_rdp_console]}

# The serial-ports blueprint (nova-specs, Juno: "Interactive web-based
# serial consoles") defines this body: one optional key, serial_console,
# that is null or an object with no members. It carries no console type
# and no port index, so the answer is always serial port 0. Tools of that
# time also POST no body at all, which we take as {}.
blueprint_get_serial_console = {
    'type': ['object', 'null'],
    'properties': {
        'serial_console': {
            'type': ['object', 'null'],
            'properties': {},
            'additionalProperties': False,
        },
    },
    'additionalProperties': False,
}
