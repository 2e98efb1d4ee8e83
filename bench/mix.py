"""The load test's mix in this process: its people, its weights, its pages, against the bare page (issue 14).

``bench/load.py`` needs gunicorn, 20 client threads and a minute or more of each kind; its ratio moves by a few
hundredths between runs. This asks the same question with less noise, for trying a change: ``--requests`` mix
requests, each drawn as the load test's clients draw them (of 20 clients, 8 own the big root, 6 the small tenant,
4 are the level-5 account's member and 2 the person in every account; each client picks one of its person's
pages at random), each followed by a bare page. It prints the mean time of each kind (throughput is the mean's
inverse, not the median's), their quotient (the load test's requests-per-second ratio, bar the CPU that
gunicorn, the client and PostgreSQL's protocol work add to both kinds), and each page's mean with its share of
the mix's time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/mix.py [--requests 2000] [--runs 2]
"""

import argparse
import logging
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.test import Client  # noqa: E402

from bench.pages import pages, prepare  # noqa: E402  (sets Django up)

# As bench/load.py's ROTATION: clients of each person out of 20.
CLIENTS = {"owner of the big root": 8, "owner of the small tenant": 6, "member of a level-5 account": 4,
           "person with a membership in every account": 2}
BARE = "/bench/bare/"


def draws(rng: random.Random, n: int):
    """(who, label, url, client) ``n`` times, weighted as the load test's clients weigh them."""
    people = defaultdict(list)
    for who, user, label, url in pages():
        people[who].append((label, url, user))
    clients = {}
    for who, entries in people.items():
        user = entries[0][2]
        clients[who] = Client()
        clients[who].force_login(user)
    choices = [who for who in people if who in CLIENTS]
    weights = [CLIENTS[who] for who in choices]
    for _ in range(n):
        who = rng.choices(choices, weights)[0]
        label, url, _user = rng.choice(people[who])
        yield who, label, url, clients[who]


def run(n: int, seed: int):
    times, bare, by_page = [], [], defaultdict(list)
    for who, label, url, client in draws(random.Random(seed), n):
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        if response.status_code == 404 and "page=40" in url:
            continue  # the small tenant has fewer pages; the load test does not ask for it either
        assert response.status_code == 200, (who, label, response.status_code)
        times.append(elapsed)
        by_page[who, label].append(elapsed)
        started = time.perf_counter()
        assert client.get(BARE).status_code == 200
        bare.append(time.perf_counter() - started)
    return times, bare, by_page


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="mix requests a run (each with a bare one)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--pages", action="store_true", help="print each page's mean and share of the mix")
    args = parser.parse_args()
    prepare()
    logging.getLogger("django.request").setLevel(logging.ERROR)  # the small tenant's page 40: a 404, skipped
    run(200, args.seed + 1000)  # warm-up: every shape baked, every template loaded
    for i in range(args.runs):
        times, bare, by_page = run(args.requests, args.seed + i)
        mix_mean, bare_mean = statistics.mean(times), statistics.mean(bare)
        print(f"run {i + 1}: mix {mix_mean * 1000:.2f} ms, bare {bare_mean * 1000:.2f} ms a request: "
              f"bare/mix {bare_mean / mix_mean:.3f}")
        if args.pages:
            total = sum(times)
            for (who, label), seconds in sorted(by_page.items(), key=lambda kv: -sum(kv[1])):
                print(f"    {who:42} {label:32} {statistics.mean(seconds) * 1000:7.2f} ms"
                      f" {sum(seconds) / total:6.1%}")


if __name__ == "__main__":
    main()
