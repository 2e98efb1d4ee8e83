"""The project's settings with the benchmarks' floor page mounted (``bench/floor_urls.py``), for the gunicorn of
``bench/load.py``; static files are collected to ``BENCH_STATIC_ROOT`` so a run leaves the project folder alone."""

import os

from config.settings import *  # noqa: F403
from config.settings import STATIC_ROOT

ROOT_URLCONF = "bench.floor_urls"
STATIC_ROOT = os.environ.get("BENCH_STATIC_ROOT", STATIC_ROOT)
