"""The OpenLoRA worker: one base language model serving many LoRA adapters at once.

Adapters in the PEFT format are paged disk -> host -> device slots (LRU, byte budgets); requests
for different adapters share one batched forward pass (gathered per-row low-rank products, as
Punica and S-LoRA do) under continuous batching. An OpenAI-style HTTP API serves it, and each
completion yields an inference receipt for on-chain attribution settlement. CUDA when present,
CPU otherwise.

Entry points: ``openledger lora serve`` (`openlora.cli`), `openlora.service.run_worker` for a
trio nursery, `openlora.service.start_worker_process` for a node that runs its worker beside
it, and `openlora.worker.build_worker` for programs that drive the engine directly. The worker
talks to a node only over JSON-RPC (`openlora.registry`).
"""
