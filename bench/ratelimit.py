"""Benchmark: what one count against a shared rate limit costs (`arena.ratelimit.count`), the
price of every paced judge request and every live prompt, in the database (SQLite, the
baseline) and in Redis (a throw-away redis-server), in alternating rounds; prints the
medians per call and their ratio. Not a test.

    .venv/bin/python bench/ratelimit.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    folder = tempfile.mkdtemp(prefix="duet-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ["DUET_VAR_DIR"] = folder
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from arena import ratelimit

    call_command("migrate", verbosity=0)
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no", "--dir", folder], stdout=subprocess.DEVNULL)  # fmt: skip
    redis_url = f"redis://127.0.0.1:{port}/0"
    rate = ratelimit.Rate(10**9, 60, "minute")  # never spent: every call is one count

    def per_call(url: str) -> float:
        settings.REDIS_URL = url
        started = time.perf_counter()
        for _ in range(args.calls):
            assert ratelimit.count("bench", rate).allowed
        return (time.perf_counter() - started) / args.calls * 1e6

    try:
        time.sleep(0.5)  # redis-server listening
        per_call(""), per_call(redis_url)  # warm: tables, connections, the script
        database, redis = [], []
        for _ in range(args.rounds):
            database.append(per_call(""))
            redis.append(per_call(redis_url))
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"count() per call, median of {args.rounds} rounds x {args.calls} calls:")
    print(f"  database (SQLite, baseline) {statistics.median(database):7.0f} us")
    print(f"  Redis                       {statistics.median(redis):7.0f} us")
    print(f"  ratio Redis / database      {statistics.median(redis) / statistics.median(database):7.2f}")


if __name__ == "__main__":
    main()
