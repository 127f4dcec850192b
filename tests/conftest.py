"""Hypothesis profiles for the whole suite.

``dev`` (default): 200 examples per property. ``ci``: 1000 examples, chosen
with ``HYPOTHESIS_PROFILE=ci`` (``.ci/run`` sets it). No deadline in either:
timing on a shared 2-core machine is too noisy for per-example deadlines.
"""

import os

from hypothesis import settings

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
