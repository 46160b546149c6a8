"""Many threads doing one thing at the same instant, for race tests."""

import threading


def all_at_once(count, attempt, timeout=90):
    """Run attempt(i) for i in range(count), on threads released together.

    Returns, for each i, what attempt(i) returned or the exception it
    raised, for the test to sort out.
    """
    barrier = threading.Barrier(count)
    outcomes = [None] * count

    def run(i):
        barrier.wait(timeout=30)
        try:
            outcomes[i] = attempt(i)
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return outcomes
