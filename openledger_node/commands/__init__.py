"""Command groups of the `openledger` CLI, one module each, each exposing `register(subparsers)`."""
