"""The SysRq keys a user may send to a guest, and how they are typed.

The set is the kernel's documented one (Documentation/admin-guide/
sysrq.rst): the loglevels 0-9 and the letters b to z. The API validates
against it, the compute agent types it, the console page offers it.
"""

# Linux input keycodes (include/uapi/linux/input-event-codes.h), the
# codeset libvirt's virDomainSendKey takes as VIR_KEYCODE_SET_LINUX.
KEY_LEFTALT = 56
KEY_SYSRQ = 99

KEYCODES = {
    '1': 2, '2': 3, '3': 4, '4': 5, '5': 6, '6': 7, '7': 8, '8': 9,
    '9': 10, '0': 11,
    'q': 16, 'w': 17, 'e': 18, 'r': 19, 't': 20, 'y': 21, 'u': 22,
    'i': 23, 'o': 24, 'p': 25,
    's': 31, 'd': 32, 'f': 33, 'g': 34, 'h': 35, 'j': 36, 'k': 37,
    'l': 38,
    'z': 44, 'x': 45, 'c': 46, 'v': 47, 'b': 48, 'n': 49, 'm': 50,
}

KEYS = ''.join(sorted(KEYCODES))

# Reboot, crash and power off: the page asks before sending these.
DESTRUCTIVE = 'bco'


def keycodes(key):
    """The keys held together for Alt+SysRq+key, in press order."""
    return [KEY_LEFTALT, KEY_SYSRQ, KEYCODES[key]]
