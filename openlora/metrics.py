"""Prometheus metrics of a worker, read from the engine and store at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from openlora.engine import Engine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EngineCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        e, store = self.engine, self.engine.store
        stats = store.stats
        yield CounterMetricFamily("openlora_generated_tokens", "Output tokens generated",
                                  value=e.tokens_generated)
        yield CounterMetricFamily("openlora_prompt_tokens", "Prompt tokens prefilled",
                                  value=e.prompt_tokens)
        yield CounterMetricFamily("openlora_requests_finished", "Requests finished",
                                  value=e.requests_finished)
        yield GaugeMetricFamily("openlora_tokens_per_second",
                                "Output tokens per second over the last 10 s",
                                value=e.tokens_per_second())
        yield GaugeMetricFamily("openlora_queue_depth", "Requests waiting", value=e.queue_depth)
        yield GaugeMetricFamily("openlora_running_requests", "Requests in the batch",
                                value=e.running)
        yield GaugeMetricFamily("openlora_registered_adapters", "Adapters registered",
                                value=len(store.records()))
        yield GaugeMetricFamily("openlora_resident_adapters", "Adapters in device slots",
                                value=len(store.resident()))
        yield GaugeMetricFamily("openlora_device_slots", "Adapter slots on the device",
                                value=store.bank.n_slots - 1)
        yield GaugeMetricFamily("openlora_host_cached_adapters", "Adapters cached in host RAM",
                                value=len(store.host_cached()))
        yield GaugeMetricFamily("openlora_host_cache_bytes", "Bytes of cached adapter weights",
                                value=store.host_bytes)
        hits = CounterMetricFamily("openlora_adapter_cache_hits", "Adapter cache hits",
                                   labels=["tier"])
        hits.add_metric(["device"], stats.device_hits)
        hits.add_metric(["host"], stats.host_hits)
        yield hits
        loads = CounterMetricFamily("openlora_adapter_loads", "Adapter loads (cache misses)",
                                    labels=["tier"])
        loads.add_metric(["device"], stats.device_loads)
        loads.add_metric(["host"], stats.host_loads)
        yield loads
        evictions = CounterMetricFamily("openlora_adapter_evictions", "Adapter evictions",
                                        labels=["tier"])
        evictions.add_metric(["device"], stats.device_evictions)
        evictions.add_metric(["host"], stats.host_evictions)
        yield evictions


class Metrics:
    """A private registry per worker (several workers may live in one test process)."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(engine))
        self.rejected = Counter("openlora_requests_rejected", "Requests refused, by reason",
                                ["reason"], registry=self.registry)
        self.requests = Counter("openlora_requests", "Requests accepted, by endpoint",
                                ["endpoint"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
