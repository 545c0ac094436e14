"""The resident base model with batched per-row LoRA and a KV cache row per request.

`ModelRunner` drives a Llama-family causal LM (SmolLM2, TinyLlama, Llama 2/3) from transformers
with its own forward loop, so that rows of one batch may sit at different positions: each
running request owns one row of a preallocated key/value cache, prefill writes a new request's
prompt into its row, and every decode step advances all rows by one token in one pass. Rows are
kept dense (0..n-1); when requests leave, rows from the end move into the holes. The embedding,
norms, rotary tables and MLP activation are the model's own modules; its q/k/v/o and MLP
projections are wrapped by `BatchedLoraLinear`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from openlora.abc import LoraBackendAPI
from openlora.lora_layers import SUPPORTED_MODULES, BatchContext, LoraSlotBank, wrap_linears

SUPPORTED_MODEL_TYPES = ("llama",)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def slot_bytes_for(
    model: nn.Module, module_names: tuple[str, ...], max_rank: int, dtype: torch.dtype
) -> int:
    """Bytes one adapter slot would take over the named linear layers of ``model``."""
    size = torch.empty((), dtype=dtype).element_size()
    total = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in module_names:
            total += (module.in_features + module.out_features) * max_rank * size
    return total


@dataclass
class PrefillResult:
    logits: torch.Tensor
    """``(k, vocab)`` float32 logits of the last prompt token of each new row."""


class ModelRunner:
    """Batched forward passes with per-row adapters and per-row KV cache rows."""

    def __init__(
        self,
        model: Any,
        backend: LoraBackendAPI,
        *,
        n_slots: int,
        max_rank: int,
        module_names: tuple[str, ...] = SUPPORTED_MODULES,
        max_model_len: int = 2048,
        max_rows: int = 64,
    ) -> None:
        config = model.config
        if getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"unsupported base model type {getattr(config, 'model_type', None)!r}; "
                f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        if n_slots < 2:
            raise ValueError("need at least 2 slots (slot 0 is the base model)")
        self.model: Any = model.eval()
        self.config: Any = config
        self.device = backend.device
        self.dtype = next(model.parameters()).dtype
        self.ctx = BatchContext(backend)
        self.bank: LoraSlotBank = wrap_linears(model, module_names, n_slots, max_rank, self.ctx)
        inner = model.model
        self.embed: Any = inner.embed_tokens
        self.layers: list[Any] = list(inner.layers)
        self.norm: Any = inner.norm
        self.rotary: Any = inner.rotary_emb
        self.lm_head: Any = model.lm_head
        self.n_heads = int(config.num_attention_heads)
        self.n_kv = int(getattr(config, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.n_heads)
        self.scale = float(self.head_dim**-0.5)
        self.vocab_size = int(config.vocab_size)
        limit = getattr(config, "max_position_embeddings", max_model_len) or max_model_len
        self.max_model_len = min(max_model_len, limit)
        self.max_rows = max_rows
        self.n_rows = 0
        self._row_len: list[int] = []
        """Tokens held by each live row."""
        self._k: list[torch.Tensor] = []
        self._v: list[torch.Tensor] = []
        self._rows_cap = 0
        self._len_cap = 0

    # -- KV cache ---------------------------------------------------------------------------

    def kv_bytes_per_token(self) -> int:
        size = torch.empty((), dtype=self.dtype).element_size()
        return 2 * len(self.layers) * self.n_kv * self.head_dim * size

    def _ensure_capacity(self, rows: int, length: int) -> None:
        """Grow the cache to hold ``rows`` rows of ``length`` tokens, keeping live rows.

        A reallocation is sized to what is needed now (rounded up), never to earlier peaks, so
        the scheduler's budget check (`kv_bytes`) bounds it.
        """
        need = max([length, *self._row_len[: self.n_rows]])
        if rows <= self._rows_cap and need <= self._len_cap:
            return
        new_rows = max(rows, min(1 << math.ceil(math.log2(max(rows, 4))), self.max_rows))
        new_len = 64
        while new_len < need:
            new_len *= 2
        new_len = min(max(new_len, need), self.max_model_len)
        shape = (new_rows, self.n_kv, new_len, self.head_dim)
        keep = self.n_rows
        span = min(self._len_cap, new_len)
        for i in range(len(self.layers)):
            k = torch.zeros(shape, dtype=self.dtype, device=self.device)
            v = torch.zeros(shape, dtype=self.dtype, device=self.device)
            if keep and self._k:
                k[:keep, :, :span] = self._k[i][:keep, :, :span]
                v[:keep, :, :span] = self._v[i][:keep, :, :span]
            if i < len(self._k):
                self._k[i], self._v[i] = k, v
            else:
                self._k.append(k)
                self._v.append(v)
        self._rows_cap, self._len_cap = new_rows, new_len

    @torch.inference_mode()
    def remove_rows(self, rows: list[int]) -> dict[int, int]:
        """Free the given rows; returns {old_row: new_row} for rows that moved into holes."""
        gone = set(rows)
        new_n = self.n_rows - len(gone)
        holes = sorted(r for r in gone if r < new_n)
        movers = [r for r in range(new_n, self.n_rows) if r not in gone]
        moved: dict[int, int] = {}
        for src, dst in zip(movers, holes, strict=True):
            for i in range(len(self.layers)):
                self._k[i][dst] = self._k[i][src]
                self._v[i][dst] = self._v[i][src]
            moved[src] = dst
            self._row_len[dst] = self._row_len[src]
        self.n_rows = new_n
        del self._row_len[new_n:]
        return moved

    def kv_bytes(self, rows: int, length: int) -> int:
        """Bytes the cache takes for ``rows`` rows of ``length`` tokens (its growth rounding
        included), so the scheduler can keep it within a budget."""
        rows = max(rows, min(1 << math.ceil(math.log2(max(rows, 4))), self.max_rows))
        cap = 64
        while cap < length:
            cap *= 2
        return rows * min(max(cap, length), self.max_model_len) * self.kv_bytes_per_token()

    def reset(self) -> None:
        """Drop every row (the cache memory stays allocated)."""
        self.n_rows = 0
        self._row_len = []

    # -- forward ----------------------------------------------------------------------------

    def _layers(
        self,
        h: torch.Tensor,
        positions: torch.Tensor,
        row0: int,
        decode_mask: torch.Tensor | None,
        span: int,
    ) -> torch.Tensor:
        n, t, _ = h.shape
        cos, sin = self.rotary(h, positions)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        rows = torch.arange(row0, row0 + n, device=self.device)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_proj(x).view(n, t, self.n_heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(n, t, self.n_kv, self.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(n, t, self.n_kv, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            if decode_mask is None:
                self._k[i][row0 : row0 + n, :, :t] = k
                self._v[i][row0 : row0 + n, :, :t] = v
                out = F.scaled_dot_product_attention(
                    q, k, v, is_causal=True, scale=self.scale, enable_gqa=self.n_kv != self.n_heads
                )
            else:
                pos = positions[:, 0]
                self._k[i][rows, :, pos] = k[:, :, 0]
                self._v[i][rows, :, pos] = v[:, :, 0]
                out = F.scaled_dot_product_attention(
                    q,
                    self._k[i][row0 : row0 + n, :, :span],
                    self._v[i][row0 : row0 + n, :, :span],
                    attn_mask=decode_mask,
                    scale=self.scale,
                    enable_gqa=self.n_kv != self.n_heads,
                )
            out = out.transpose(1, 2).reshape(n, t, self.n_heads * self.head_dim)
            h = h + attn.o_proj(out)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return h

    @torch.inference_mode()
    def prefill(self, prompts: list[list[int]], slots: list[int]) -> torch.Tensor:
        """Append one row per prompt, fill its cache, return ``(k, vocab)`` last-token logits."""
        if len(prompts) != len(slots) or not prompts:
            raise ValueError("need one slot per prompt and at least one prompt")
        lengths = [len(p) for p in prompts]
        if min(lengths) < 1:
            raise ValueError("empty prompt")
        t = max(lengths)
        if t > self.max_model_len:
            raise ValueError(f"prompt of {t} tokens exceeds max_model_len {self.max_model_len}")
        row0 = self.n_rows
        self._ensure_capacity(row0 + len(prompts), t)
        ids = torch.zeros((len(prompts), t), dtype=torch.long)
        for j, p in enumerate(prompts):
            ids[j, : len(p)] = torch.tensor(p, dtype=torch.long)
        ids = ids.to(self.device)
        positions = torch.arange(t, device=self.device).unsqueeze(0).expand(len(prompts), t)
        self.ctx.meta = self.ctx.backend.prepare(slots)
        try:
            h = self._layers(self.embed(ids), positions, row0, None, t)
        finally:
            self.ctx.meta = None
        last = torch.tensor([n - 1 for n in lengths], device=self.device)
        h = h[torch.arange(len(prompts), device=self.device), last]
        self.n_rows += len(prompts)
        self._row_len[row0:] = lengths
        return self.lm_head(self.norm(h)).float()

    @torch.inference_mode()
    def decode(self, tokens: list[int], positions: list[int], slots: list[int]) -> torch.Tensor:
        """One step for all rows: row i takes ``tokens[i]`` at ``positions[i]``."""
        n = self.n_rows
        if not (len(tokens) == len(positions) == len(slots) == n) or n == 0:
            raise ValueError(f"decode needs exactly one token per row ({n} rows)")
        span = max(positions) + 1
        if span > self.max_model_len:
            raise ValueError("a row ran past max_model_len")
        self._ensure_capacity(n, span)
        ids = torch.tensor(tokens, dtype=torch.long).view(n, 1).to(self.device)
        pos = torch.tensor(positions, dtype=torch.long).view(n, 1).to(self.device)
        mask = torch.arange(span, device=self.device).view(1, 1, 1, span) <= pos.view(n, 1, 1, 1)
        self.ctx.meta = self.ctx.backend.prepare(slots)
        try:
            h = self._layers(self.embed(ids), pos, 0, mask, span)
        finally:
            self.ctx.meta = None
        self._row_len = [max(n, p + 1) for n, p in zip(self._row_len, positions, strict=True)]
        return self.lm_head(self.norm(h[:, 0])).float()
