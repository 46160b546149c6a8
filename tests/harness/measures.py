"""Figures of processes and samples: memory, CPU time, percentiles."""

import os

from tests.harness import processes


def percentile(values, fraction):
    """The value below which fraction of values fall; NaN if none."""
    values = sorted(values)
    if not values:
        return float('nan')
    return values[min(len(values) - 1, int(fraction * len(values)))]


def memory_kib(pid, tree=False):
    """(RSS, PSS) in KiB of a process, or summed over its process tree."""
    rss = pss = 0
    for p in (processes.process_tree(pid) if tree else [pid]):
        try:
            with open('/proc/%d/smaps_rollup' % p) as f:
                for line in f:
                    if line.startswith('Rss:'):
                        rss += int(line.split()[1])
                    elif line.startswith('Pss:'):
                        pss += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a worker that just died
    return rss, pss


def tree_rss_kib(pid):
    """Resident memory of a process and all its descendants, in KiB."""
    return memory_kib(pid, tree=True)[0]


def cpu_seconds(pid, tree=False):
    """User plus system CPU time of a process, or of its live tree."""
    ticks = 0
    for p in (processes.process_tree(pid) if tree else [pid]):
        try:
            with open('/proc/%d/stat' % p) as f:
                # The command name may hold spaces: fields follow its ')'.
                fields = f.read().rsplit(')', 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf('SC_CLK_TCK')


def machine_busy_seconds():
    """CPU time every core of the machine has spent not idle."""
    with open('/proc/stat') as f:
        jiffies = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest: in user)
    return (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / \
        os.sysconf('SC_CLK_TCK')
