"""Reading adapters in the PEFT LoRA format (adapter_config.json + adapter_model.safetensors).

Turns a PEFT folder into per-module ``(A^T, scaled B^T)`` pairs ready for a slot, and computes
the adapter's content hash, the value the chain's model registry records.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from openlora.lora_layers import SUPPORTED_MODULES

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.*\.(?P<proj>\w+))\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$"
)


class AdapterFormatError(ValueError):
    """The folder is not a LoRA adapter this worker can serve."""


@dataclass(frozen=True)
class AdapterSpec:
    """What registration learns from an adapter folder without loading its weights."""

    path: Path
    rank: int
    """Largest rank over its modules."""
    modules: tuple[str, ...]
    content_hash: str
    nbytes: int
    """Bytes of its A and B matrices in float32 (the host-memory cost)."""
    base_model: str | None
    dims: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False)
    """Module path -> (in_features, out_features) the adapter expects."""


def content_hash(folder: str | Path) -> str:
    """0x-hex sha256 over the adapter's config and weights files (name, NUL, file sha256).

    Equal to ``sha256(b"adapter_config.json\\0" + sha256(config) + b"adapter_model.safetensors\\0"
    + sha256(weights))``, so anyone can recompute it with standard tools.
    """
    folder = Path(folder)
    outer = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        inner = hashlib.sha256()
        with open(folder / name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(name.encode() + b"\0" + inner.digest())
    return "0x" + outer.hexdigest()


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not path.is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise AdapterFormatError(f"{folder}: needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AdapterFormatError(f"{path}: unreadable JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise AdapterFormatError(f"{path}: not a JSON object")
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise AdapterFormatError(f"{folder}: peft_type {config.get('peft_type')!r} is not LORA")
    for flag, what in (("use_dora", "DoRA"), ("fan_in_fan_out", "fan_in_fan_out layers")):
        if config.get(flag):
            raise AdapterFormatError(f"{folder}: {what} adapters are not supported")
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        raise AdapterFormatError(f"{folder}: LoRA bias terms are not supported")
    if config.get("modules_to_save"):
        raise AdapterFormatError(f"{folder}: modules_to_save (full-weight modules) not supported")
    return config


def _pattern_value(patterns: dict, module: str, default: float) -> float:
    """PEFT's rank_pattern/alpha_pattern lookup: the first key matching the module path's end."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return float(value)
    return default


def inspect_adapter(folder: str | Path) -> AdapterSpec:
    """Validate an adapter folder from its config and tensor headers; load no weights."""
    folder = Path(folder)
    config = _read_config(folder)
    ranks: dict[str, int] = {}
    ins: dict[str, int] = {}
    outs: dict[str, int] = {}
    nbytes = 0
    try:
        with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as fh:
            keys = list(fh.keys())
            for key in keys:
                match = _KEY.match(key)
                if match is None:
                    raise AdapterFormatError(f"{folder}: unsupported tensor {key!r}")
                if match["proj"] not in SUPPORTED_MODULES:
                    raise AdapterFormatError(
                        f"{folder}: targets {match['proj']!r}; supported: {', '.join(SUPPORTED_MODULES)}"
                    )
                shape = fh.get_slice(key).get_shape()
                if len(shape) != 2:
                    raise AdapterFormatError(f"{folder}: {key} is not a matrix")
                nbytes += shape[0] * shape[1] * 4
                if match["ab"] == "A":
                    ranks[match["module"]] = shape[0]
                    ins[match["module"]] = shape[1]
                else:
                    outs[match["module"]] = shape[0]
    except AdapterFormatError:
        raise
    except Exception as exc:  # safetensors raises its own error types
        raise AdapterFormatError(f"{folder}: unreadable safetensors ({exc})") from exc
    if not ranks:
        raise AdapterFormatError(f"{folder}: no LoRA tensors found")
    if set(ranks) != set(outs):
        raise AdapterFormatError(f"{folder}: some modules lack their A or B matrix")
    return AdapterSpec(
        path=folder,
        rank=max(ranks.values()),
        modules=tuple(sorted(ranks)),
        content_hash=content_hash(folder),
        nbytes=nbytes,
        base_model=config.get("base_model_name_or_path"),
        dims={m: (ins[m], outs[m]) for m in ranks},
    )


def load_adapter_weights(
    folder: str | Path, dtype: torch.dtype = torch.float32
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per module path: ``(A^T (in, r), (scaling * B)^T (r, out))`` on the CPU."""
    folder = Path(folder)
    config = _read_config(folder)
    tensors = load_file(str(folder / WEIGHTS_FILE), device="cpu")
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        match = _KEY.match(key)
        if match is None or match["proj"] not in SUPPORTED_MODULES:
            raise AdapterFormatError(f"{folder}: unsupported tensor {key!r}")
        pairs.setdefault(match["module"], {})[match["ab"]] = value
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    base_alpha = float(config.get("lora_alpha", config.get("r", 8)))
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise AdapterFormatError(f"{folder}: {module} lacks its A or B matrix")
        a, b = ab["A"], ab["B"]
        rank = a.shape[0]
        if b.shape[1] != rank:
            raise AdapterFormatError(f"{folder}: {module} A and B ranks differ")
        alpha = _pattern_value(config.get("alpha_pattern") or {}, module, base_alpha)
        scaling = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
        a_t = a.to(torch.float32).t().contiguous()
        b_t = (b.to(torch.float32) * scaling).t().contiguous()
        out[module] = (a_t.to(dtype), b_t.to(dtype))
    return out
