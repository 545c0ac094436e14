"""Genesis: the schema of a chain's first state and its network presets.

Chain id, timestamp, gas limit, base fee, allocations, validators and protocol parameters;
presets (`devnet`, `testnet`) and import of geth-style `genesis.json` files.
"""
