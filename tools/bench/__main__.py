"""Run one benchmark: python -m tools.bench NAME [its arguments].

NAME is a module of tools/bench with a main(); --help after it shows that
benchmark's own arguments.
"""

import importlib
import pkgutil
import sys

import tools.bench

# Modules that are parts of benchmarks, not benchmarks of their own.
PARTS = {'api_results', 'tcp_relay'}


def benchmarks():
    return sorted(info.name for info in pkgutil.iter_modules(
        tools.bench.__path__) if not info.name.startswith('_')
        and info.name not in PARTS)


def main():
    names = benchmarks()
    if len(sys.argv) < 2 or sys.argv[1] not in names:
        sys.stderr.write('usage: python -m tools.bench NAME [ARGS...]\n'
                         'NAME: %s\n' % ', '.join(names))
        return 2
    name = sys.argv.pop(1)
    sys.argv[0] = 'python -m tools.bench ' + name
    return importlib.import_module('tools.bench.' + name).main()


if __name__ == '__main__':
    sys.exit(main())
