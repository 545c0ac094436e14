"""Pure protocol rules of Datanets, the model registry and attribution settlement.

Community data pools whose contributions are recorded on chain, models registered on datanet
versions, and micropayments that split each inference fee among model owner, data contributors
and the protocol. Plain functions over a small storage interface: no EVM, no I/O.
"""
