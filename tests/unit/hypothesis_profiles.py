"""How hard the property tests try: a quick pass in the suite, a long
fuzz run by hand.

    SERIALPROXY_HYPOTHESIS_PROFILE=fuzz   (tox -e fuzz) many examples each
    SERIALPROXY_FUZZ_EXAMPLES=N           how many, for the fuzz profile
    SERIALPROXY_HYPOTHESIS_PROFILE=functional
                                          (tox -e functional) a few dozen:
                                          each example of the hostile
                                          clients test is real sockets
                                          and up to 3 MiB through a proxy

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
hypothesis.settings.register_profile(
    'functional', parent=hypothesis.settings.get_profile('suite'),
    max_examples=int(os.environ.get('SERIALPROXY_FUNCTIONAL_EXAMPLES',
                                    '60')))
hypothesis.settings.load_profile(
    os.environ.get('SERIALPROXY_HYPOTHESIS_PROFILE', 'suite'))
