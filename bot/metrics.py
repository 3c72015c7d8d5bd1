"""Prometheus metrics, served on /metrics: what an operator graphs and alerts on."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry()

DECISIONS = Counter(
    "accessbot_decisions_total", "Answers received on review items, by verdict", ["verdict"], registry=REGISTRY
)
OUTBOX_SENT = Counter("accessbot_outbox_sent_total", "Messages delivered from the outbox", registry=REGISTRY)
OUTBOX_DEFERRED = Counter(
    "accessbot_outbox_deferred_total", "Messages put back in the outbox for a later attempt", registry=REGISTRY
)
OUTBOX_UNDELIVERABLE = Counter(
    "accessbot_outbox_undeliverable_total", "Messages Teams refused for good (bot blocked, no conversation, too big)",
    registry=REGISTRY,
)
OPEN_ITEMS = Gauge("accessbot_open_items", "Review items still waiting for an answer", registry=REGISTRY)
TICK_FAILURES = Counter("accessbot_tick_failures_total", "Scheduler rounds that failed", registry=REGISTRY)
CUSTOMER_TICK_FAILURES = Counter(
    "accessbot_customer_tick_failures_total", "Customer campaigns whose clock or remediation failed in a round (a CSP partner's)",
    registry=REGISTRY,
)
STORE_WRITES_REFUSED = Counter(
    "accessbot_store_writes_refused_total",
    "Writes the store refused: 'unavailable' (disk full, read-only, damaged ledger: nothing recorded) or "
    "'rejected' (one record that cannot be stored)",
    ["reason"],
    registry=REGISTRY,
)
