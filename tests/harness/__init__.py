"""What functional tests, end-to-end tests and benchmarks build on.

One copy of the real world they run in (services as processes, guests,
brokers, databases: fixtures.py, proxy_world.py, bench_world.py), of the
stand-in compute agent and the raw websocket client (proxy_world.py), of
the process and measuring helpers (processes.py, measures.py), and of the
check every started service passes at teardown (services.py).
tools/bench imports it as a package; nothing here imports a test module.
"""
