"""Teams' limits on our side: exact sliding windows, driven by a hand-moved clock (no sleeping)."""

from __future__ import annotations

import bisect
import heapq

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.ratelimit import (
    SWEEP_EVERY,
    TEAMS_PER_CONVERSATION,
    TEAMS_PER_TENANT,
    RateLimiter,
    SlidingWindows,
    Window,
    gcra_grant,
    pacing,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def send(windows: SlidingWindows, key: str, clock: Clock, latency: float = 0.0) -> None:
    """One request that is granted now and completes ``latency`` seconds later."""
    assert windows.wait(key) == 0.0
    windows.start(key)
    clock.t += latency
    windows.finish(key)


def test_the_defaults_are_teams_limits() -> None:
    assert TEAMS_PER_CONVERSATION == (Window(7, 1.0), Window(8, 2.0), Window(60, 30.0), Window(1800, 3600.0))
    assert TEAMS_PER_TENANT == (Window(50, 1.0),)
    assert RateLimiter().allowed_rate() == 50.0


def test_a_conversation_takes_seven_in_a_second_and_the_eighth_waits_for_the_first_to_age_out() -> None:
    clock = Clock()
    windows = SlidingWindows(TEAMS_PER_CONVERSATION, clock)
    for _ in range(7):
        send(windows, "a:alex", clock)
        clock.t += 0.1
    assert windows.wait("a:alex") == pytest.approx(0.3)  # the first was at t0; now is t0 + 0.7
    clock.t += 0.3
    assert windows.wait("a:alex") == 0.0


def test_eight_in_two_seconds_binds_even_when_the_last_second_has_room() -> None:
    clock = Clock()
    start = clock.t
    windows = SlidingWindows(TEAMS_PER_CONVERSATION, clock)
    for _ in range(7):
        send(windows, "a:alex", clock)
    clock.t = start + 1.0
    send(windows, "a:alex", clock)  # 1 s window: just the one; 2 s window: eight
    clock.t = start + 1.5
    assert windows.wait("a:alex") == pytest.approx(0.5)  # until the first seven are 2 s old


def test_sixty_in_thirty_seconds_and_1800_in_an_hour() -> None:
    clock = Clock()
    windows = SlidingWindows(TEAMS_PER_CONVERSATION, clock)
    start = clock.t
    for n in range(60):
        send(windows, "a:alex", clock)
        clock.t = start + (n + 1) * 0.4  # 2.5 a second: well inside the 1 s and 2 s windows
    assert windows.wait("a:alex") == pytest.approx(start + 30.0 - clock.t)

    hourly = SlidingWindows([Window(1800, 3600.0)], clock)
    for _ in range(1800):
        send(hourly, "a:megan", clock)
    assert hourly.wait("a:megan") == pytest.approx(3600.0)


def test_a_request_counts_from_when_it_completed_because_that_is_the_latest_it_can_have_arrived() -> None:
    clock = Clock()
    windows = SlidingWindows([Window(1, 1.0)], clock)
    send(windows, "t", clock, latency=0.4)
    assert windows.wait("t") == pytest.approx(1.0)


def test_requests_in_flight_fill_a_window_on_their_own() -> None:
    clock = Clock()
    windows = SlidingWindows([Window(2, 1.0)], clock)
    windows.start("t")
    assert windows.wait("t") == 0.0
    windows.start("t")
    assert windows.wait("t") == pytest.approx(0.5)  # unknown when they end: ask again after a fair share
    windows.finish("t")
    assert windows.wait("t") == pytest.approx(1.0)


def test_finishing_a_request_that_never_started_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        SlidingWindows([Window(1, 1.0)], Clock()).finish("t")


def test_the_tenant_limit_is_shared_by_every_conversation_and_a_refusal_counts_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(per_tenant=[Window(3, 1.0)], clock=clock)
    for person in ("a:alex", "a:megan", "a:lynne"):
        assert limiter.acquire(person, "contoso") == 0.0
        limiter.release(person, "contoso")
    assert limiter.acquire("a:patti", "contoso") == pytest.approx(1.0)
    assert limiter.acquire("a:patti", "fabrikam") == 0.0  # another tenant has its own budget
    limiter.release("a:patti", "fabrikam")
    clock.t += 1.0
    assert limiter.acquire("a:patti", "contoso") == 0.0
    assert limiter.conversations.wait("a:patti") == 0.0  # the refused tries were not counted


def test_idle_keys_are_forgotten_after_the_longest_window() -> None:
    clock = Clock()
    windows = SlidingWindows([Window(5, 1.0)], clock)
    for n in range(4 * SWEEP_EVERY):
        send(windows, f"a:{n}", clock)
        clock.t += 0.01
    assert windows.tracked() <= SWEEP_EVERY + 100  # the last second's keys, plus those since the last sweep


def test_an_unusable_window_is_refused() -> None:
    with pytest.raises(ValueError):
        Window(0, 1.0)
    with pytest.raises(ValueError):
        SlidingWindows([], Clock())


requests = st.lists(
    st.tuples(
        st.sampled_from(["a:alex", "a:megan", "a:lynne"]),
        st.floats(0.0, 0.6),  # how long the request takes
        st.floats(0.0, 0.3),  # pause before the next one is asked for
        st.booleans(),  # whether the caller waits for it to finish before asking again
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(requests, st.data())
def test_whatever_the_network_delay_the_connector_never_sees_more_than_the_limits(
    schedule: list[tuple[str, float, float, bool]], data: st.DataObject
) -> None:
    """Requests overlap and take random times; each may reach the connector at any moment between its
    grant and its completion. In every window the connector counts at most the limit, and a wait the
    limiter names is exact when nothing is in flight."""
    per_conversation = (Window(3, 1.0), Window(4, 2.0))
    per_tenant = (Window(5, 1.0),)
    clock = Clock()
    limiter = RateLimiter(per_conversation, per_tenant, clock)
    completions: list[tuple[float, int, str]] = []
    spans: list[tuple[str, float, float]] = []

    def advance_to(moment: float) -> None:
        while completions and completions[0][0] <= moment:
            finished_at, _, person = heapq.heappop(completions)
            clock.t = finished_at
            limiter.release(person, "contoso")
        clock.t = max(clock.t, moment)

    for n, (person, latency, pause, waits) in enumerate(schedule):
        advance_to(clock.t + pause)
        while (wait := limiter.acquire(person, "contoso")) > 0:
            idle = not completions
            advance_to(clock.t + wait)
            if idle:
                assert limiter.acquire(person, "contoso") == 0.0
                break
        spans.append((person, clock.t, clock.t + latency))
        heapq.heappush(completions, (clock.t + latency, n, person))
        if waits:
            advance_to(clock.t + latency)
    advance_to(clock.t + 10.0)

    arrivals = [(person, start + data.draw(st.floats(0.0, 1.0)) * (end - start)) for person, start, end in spans]
    for windows, groups in (
        (per_tenant, [[at for _, at in arrivals]]),
        (per_conversation, [[at for p, at in arrivals if p == person] for person in {p for p, _ in arrivals}]),
    ):
        for times in groups:
            times.sort()
            for window in windows:
                busiest = max(sum(1 for t in times if at - window.seconds < t <= at) for at in times)
                assert busiest <= window.limit


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 2000),
    st.floats(0.5, 3600.0),
    st.lists(st.floats(0.0, 0.2), min_size=1, max_size=300),
)
def test_a_paced_window_grants_at_most_one_less_than_its_limit_in_any_interval_of_its_length(
    limit: int, seconds: float, gaps: list[float]
) -> None:
    """The cell a shared budget keeps per window: whenever requests are asked for, the grants in any interval
    of the window's length stay below the limit, so one request's network delay cannot push Teams over it."""
    window = Window(limit, seconds)
    interval, tolerance = pacing(window)
    arrival, now, granted = 0.0, 0.0, []
    for gap in gaps:
        now += gap * seconds
        wait, moved = gcra_grant([(arrival, interval, tolerance)], now)
        if wait == 0.0:
            (arrival,) = moved
            granted.append(now)
    ordered = sorted(granted)
    busiest = max(bisect.bisect_left(ordered, t + seconds * (1 - 1e-9)) - i for i, t in enumerate(ordered)) if ordered else 0
    assert busiest <= max(1, limit - 1)


def test_a_grant_takes_every_cell_or_none() -> None:
    cells = [(10.0, 1.0, 0.0), (0.0, 0.5, 0.0)]
    assert gcra_grant(cells, 9.0) == (1.0, [])
    assert gcra_grant(cells, 10.0) == (0.0, [11.0, 10.5])
