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

# What each key makes the kernel do, in the words of sysrq.rst, as the
# console page's menu lists them (in this order).
LABELS = {
    'h': 'Help: list the keys',
    's': 'Sync all filesystems',
    'u': 'Remount all read-only',
    'j': 'Thaw frozen filesystems',
    'e': 'Terminate all tasks (SIGTERM)',
    'i': 'Kill all tasks (SIGKILL)',
    'k': 'Kill console programs (SAK)',
    'f': 'Run the OOM killer',
    'n': 'Make real-time tasks nice',
    'r': 'Keyboard out of raw mode',
    'v': 'Restore framebuffer console',
    'l': 'Backtrace of active CPUs',
    'm': 'Memory information',
    'p': 'Registers and flags',
    'q': 'Armed hrtimers, clockevents',
    't': 'Task list',
    'w': 'Blocked (D state) tasks',
    'd': 'Held locks',
    'z': 'Dump the ftrace buffer',
    'g': 'Kernel debugger (kgdb)',
    'x': 'Architecture-specific (x)',
    'y': 'Architecture-specific (y)',
    'b': 'Reboot at once',
    'c': 'Crash the kernel',
    'o': 'Power off at once',
}
LABELS.update(('%d' % level, 'Console log level %d' % level)
              for level in range(10))

# Reboot, crash, power off, and the two that end every process but init
# (its services with them): the page asks before sending these, and says
# why.
CONSEQUENCES = {
    'b': 'The server restarts at once, without syncing or unmounting its '
         'disks: data not yet written is lost.',
    'c': 'The kernel panics: the server stops, and restarts or takes a '
         'crash dump only if it is set up to.',
    'o': 'The server powers off at once, without syncing or unmounting '
         'its disks.',
    'e': 'Every process but init is asked to end (SIGTERM): services stop '
         'and users are logged out.',
    'i': 'Every process but init is killed at once (SIGKILL): services '
         'stop without cleaning up and users are logged out.',
}
DESTRUCTIVE = 'bceio'


def keycodes(key):
    """The keys held together for Alt+SysRq+key, in press order."""
    return [KEY_LEFTALT, KEY_SYSRQ, KEYCODES[key]]
