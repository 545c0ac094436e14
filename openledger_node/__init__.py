"""The composition root of an OpenLedger node.

CLI (`openledger`), TOML configuration, the transaction pool, block production, the Ethereum
JSON-RPC server (HTTP and WebSocket) and the wiring of every service into one trio nursery.
This is the only package allowed to import all the others.
"""
