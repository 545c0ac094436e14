"""The execution layer: py-evm's Prague fork subclassed as the OpenLedger VM.

OPEN is the native currency (gas token). This package owns the chain over a key-value store
(LevelDB through plyvel, or memory for tests), block building and import, receipts and logs,
`eth_call` / gas estimation, and the native precompiles (datanets, attribution, staking).
"""
