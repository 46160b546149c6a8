"""How hard the property tests try: a quick pass in the suite, a long
fuzz run by hand.

    SERIALPROXY_HYPOTHESIS_PROFILE=fuzz   (tox -e fuzz) many examples each
    SERIALPROXY_FUZZ_EXAMPLES=N           how many, for the fuzz profile

Import this module before using hypothesis's @given.
"""

import os

import hypothesis

hypothesis.settings.register_profile(
    'suite', max_examples=100, deadline=None, derandomize=False,
    suppress_health_check=[hypothesis.HealthCheck.too_slow,
                           hypothesis.HealthCheck.data_too_large])
hypothesis.settings.register_profile(
    'fuzz', parent=hypothesis.settings.get_profile('suite'),
    max_examples=int(os.environ.get('SERIALPROXY_FUZZ_EXAMPLES', '20000')),
    # A hang is a finding too: no example may take this long.
    deadline=10000)
hypothesis.settings.load_profile(
    os.environ.get('SERIALPROXY_HYPOTHESIS_PROFILE', 'suite'))
