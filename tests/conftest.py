"""Settings for the whole suite.

Hypothesis, by default, fails an example that takes over 200 ms (``deadline``) and a test whose data
is slow to generate (``HealthCheck.too_slow``): both measure the machine, not the code, and turn red
at random on a busy 2-core CI box. Properties here are about behaviour only, so both are off for every
test, including ones that forget to say so.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("accessbot", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("accessbot")

from tests.postgres import empty_postgres_url, postgres_url  # noqa: E402,F401  (fixtures for the PostgreSQL tests)
