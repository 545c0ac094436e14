"""Ethereum JSON-RPC: dispatch, encodings, the eth_/net_/web3_ methods and the HTTP/WebSocket server."""
