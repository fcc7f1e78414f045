"""Shared test configuration: deterministic CPU runs and a hypothesis profile for the fast suite."""

import os

import torch
from hypothesis import HealthCheck, settings

# One thread per test process when pytest-xdist runs one process per core (make test), so the
# processes do not oversubscribe the cores; two otherwise.
_DEFAULT_THREADS = "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"
_THREADS = int(os.environ.get("MOL_DIFFUSION_TEST_THREADS", _DEFAULT_THREADS))
torch.set_num_threads(_THREADS)
if _THREADS == 1:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")

# Estimator properties are costly to evaluate: fewer examples, no per-example deadline
# (shared CI machines are noisy), and a fixed derandomized seed so a red run can be replayed.
settings.register_profile(
    "fast",
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
