"""Network presets: the protocol constants of each kind of network.

`devnet` is the single-validator developer chain (`openledger devnet`): ten accounts derived
from the well-known test mnemonic, funded with 10,000 OPEN each, and a chain id chosen to
collide with no public chain (Ethereum's well-known dev ids 1337 and 31337 are avoided too, so
a wallet never mixes a devnet with another local chain).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account

from genesis.schema import OPEN, Genesis, GenesisAccount, GenesisValidator

DEVNET_CHAIN_ID = 3_301_730  # 0x326162, "OpenLedger devnet"; not registered by any chain we know
TEST_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_BALANCE = 10_000 * OPEN

# Protocol parameters for short-lived test networks: fast timeouts.
MINIMAL_CONSENSUS_PARAMS = {
    "consensus.timeout_propose_ms": 1000,
    "consensus.timeout_propose_delta_ms": 500,
    "consensus.timeout_vote_ms": 500,
    "consensus.timeout_vote_delta_ms": 250,
    "consensus.block_time_ms": 1000,
}


@dataclass(frozen=True)
class DevAccount:
    """A funded developer account: its address and (well-known, never secret) private key."""

    address: str
    private_key: bytes


def dev_accounts(count: int = 10, mnemonic: str = TEST_MNEMONIC) -> list[DevAccount]:
    """The first `count` accounts of `mnemonic` on the standard path m/44'/60'/0'/0/i."""
    if not 0 < count <= 1000:
        raise ValueError("dev account count must be in 1..1000")
    Account.enable_unaudited_hdwallet_features()
    out = []
    for index in range(count):
        acct = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
        out.append(DevAccount(address=acct.address, private_key=bytes(acct.key)))
    return out


def devnet_genesis(
    accounts: int = 10,
    timestamp: int = 0,
    validators: tuple[GenesisValidator, ...] = (),
    chain_id: int = DEVNET_CHAIN_ID,
) -> Genesis:
    """The devnet genesis: funded dev accounts and the minimal preset's parameters."""
    funded = dev_accounts(accounts)
    alloc = {
        bytes.fromhex(acct.address[2:]): GenesisAccount(balance=DEV_ACCOUNT_BALANCE)
        for acct in funded
    }
    params: dict[str, object] = dict(MINIMAL_CONSENSUS_PARAMS)
    # The protocol's share of inference fees and slashed stakes go to dev account 0, so a
    # developer can see and withdraw them.
    params["datanets.protocol_treasury"] = funded[0].address
    return Genesis(
        chain_id=chain_id,
        timestamp=timestamp,
        alloc=alloc,
        validators=validators,
        params=params,
        extra_data=b"openledger devnet",
    )
