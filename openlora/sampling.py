"""Sampling parameters and next-token choice (greedy, temperature, nucleus), per request."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch


class InvalidParams(ValueError):
    """A request's sampling parameters are out of range."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool) or self.max_tokens < 1:
            raise InvalidParams("max_tokens must be an integer >= 1")
        if not 0.0 <= float(self.temperature) <= 2.0:
            raise InvalidParams("temperature must be between 0 and 2")
        if not 0.0 < float(self.top_p) <= 1.0:
            raise InvalidParams("top_p must be in (0, 1]")
        if len(self.stop) > 4 or any(not isinstance(s, str) or not s for s in self.stop):
            raise InvalidParams("stop must be up to 4 non-empty strings")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise InvalidParams("seed must be an integer")

    @property
    def greedy(self) -> bool:
        return float(self.temperature) == 0.0


@dataclass
class Sampler:
    """Chooses one request's tokens; owns its random generator so a seed reproduces output."""

    params: SamplingParams
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator()
        seed = self.params.seed if self.params.seed is not None else random.getrandbits(63)
        self.generator.manual_seed(seed % (1 << 63))

    def choose(self, logits: torch.Tensor, greedy_choice: int) -> int:
        """Next token from ``(vocab,)`` float logits; ``greedy_choice`` is their argmax."""
        if self.params.greedy:
            return greedy_choice
        scaled = logits.detach().to("cpu", torch.float32) / float(self.params.temperature)
        probs = torch.softmax(scaled, dim=-1)
        if self.params.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_p, dim=-1)
            keep = cumulative - sorted_p < self.params.top_p  # smallest set reaching top_p
            sorted_p = sorted_p * keep
            pick = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=self.generator)
            return int(order[pick])
        return int(torch.multinomial(probs, 1, generator=self.generator))


def stop_hold(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters of ``text`` could begin a stop string (hold them back)."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return hold
