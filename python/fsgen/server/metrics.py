"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

SOURCE_NAMES = ("system1", "system2", "combined")  # fsgen.Source values 0, 1, 2


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, scheduler):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("fsgen_requests", "HTTP requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.tokens = Counter("fsgen_tokens_generated", "Tokens generated, by who wrote them", ["source"],
                              registry=r)
        self.prompt_tokens = Counter("fsgen_prompt_tokens", "Prompt tokens of the requests", registry=r)
        self.prompt_cached = Counter("fsgen_prompt_cached_tokens", "Prompt tokens found in the models' caches "
                                     "(not read again)", registry=r)
        self.drafted = Counter("fsgen_draft_tokens", "Draft tokens proposed (speculative)", registry=r)
        self.accepted = Counter("fsgen_draft_accepted_tokens", "Draft tokens accepted (speculative)", registry=r)
        self.system2_share = Gauge("fsgen_system2_share",
                                   "Share of all generated tokens that System 2 wrote or shared", registry=r)
        self.draft_acceptance = Gauge("fsgen_draft_acceptance", "Accepted / drafted tokens over all requests",
                                      registry=r)
        self.generations = Counter("fsgen_generations", "Generations by how they ended "
                                   "(stop, length, cancelled, error)", ["finish"], registry=r)
        self.left_queue = Counter("fsgen_left_queue", "Requests whose client left while they waited", registry=r)
        self.latency = Histogram("fsgen_request_seconds", "Time from request to last byte of a generation",
                                 ["endpoint"], registry=r,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.first_token = Histogram("fsgen_first_token_seconds", "Time from request to the first token",
                                     registry=r, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.queue_wait = Histogram("fsgen_queue_wait_seconds", "Time a request waited for its turn", registry=r,
                                    buckets=(0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        g = Gauge("fsgen_queue_depth", "Requests waiting for their turn", registry=r)
        g.set_function(lambda: scheduler.waiting)
        g = Gauge("fsgen_running", "Generations running now (0 or 1)", registry=r)
        g.set_function(lambda: int(scheduler.busy))
        self._totals = [0, 0, 0]
        self._drafted = self._accepted = 0

    def generation_done(self, pieces: list, stats: dict, finish: str, *, combines: bool = False) -> None:
        """pieces: streamed pieces by source (a piece may hold several tokens); stats: Result.stats;
        combines: whether System 2's tokens are both models combined, for a generation that
        streamed no System 2 pieces (a non-streaming request)."""
        sources = list(pieces)
        if stats:  # exact totals from the stats; the pieces only split System 2's share in two
            n = int(stats.get("n_tokens", 0))
            s2 = int(round(stats.get("system2_fraction", 0.0) * n))
            if pieces[1] + pieces[2]:
                combined = int(round(s2 * pieces[2] / (pieces[1] + pieces[2])))
            else:
                combined = s2 if combines else 0
            sources = [n - s2, s2 - combined, combined]
        for name, n in zip(SOURCE_NAMES, sources):
            if n:
                self.tokens.labels(name).inc(n)
            self._totals[SOURCE_NAMES.index(name)] += n
        total = sum(self._totals)
        if total:
            self.system2_share.set((self._totals[1] + self._totals[2]) / total)
        if stats:
            self.prompt_tokens.inc(stats.get("n_prompt_tokens", 0))
            self.prompt_cached.inc(stats.get("n_prompt_cached", 0))
            self.drafted.inc(stats.get("drafted", 0))
            self.accepted.inc(stats.get("accepted", 0))
            self._drafted += stats.get("drafted", 0)
            self._accepted += stats.get("accepted", 0)
            if self._drafted:
                self.draft_acceptance.set(self._accepted / self._drafted)
        self.generations.labels(finish).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
