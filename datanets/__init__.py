"""Pure protocol rules of Datanets, the model registry and attribution settlement.

Community data pools whose contributions are recorded on chain, models registered on datanet
versions, and micropayments that split each inference fee among model owner, data contributors
and the protocol. Plain functions over a small storage interface: no EVM, no I/O.

`abc` (the word-store interface), `types`, `ledger` (records laid out over storage words),
`params` (genesis parameters), `datanet_rules`, `model_rules`, `settlement_rules`, `merkle`
(the version tree), `receipts` (EIP-712 receipts and their wire formats) and `attribution`
(the span attribution engine that weighs a model's output over the contributions).
"""
