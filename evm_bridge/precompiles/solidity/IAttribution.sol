// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title OpenLedger attribution settlement precompile, at 0x0000000000000000000000000000000000000902.
/// @notice Payers escrow OPEN and authorise workers; a worker settles batches of inference
/// receipts, each signed by its payer as EIP-712 typed data
/// (domain: name "OpenLedger Attribution", version "1", chainId, verifyingContract = this
/// address; type InferenceReceipt(uint256 modelId,address payer,address worker,
/// uint64 inputTokens,uint64 outputTokens,uint256 fee,uint256 nonce,uint256[] contributionIds,
/// uint16[] weights), where worker is the settling msg.sender). Each fee is split among the
/// protocol, the model owner and the contributors by weight (basis points summing to 10,000);
/// shares accrue here and are withdrawn with withdrawEarnings.
interface IAttribution {
    struct Receipt {
        uint256 modelId;
        address payer;
        uint64 inputTokens;
        uint64 outputTokens;
        uint256 fee;
        uint256 nonce;
        uint256[] contributionIds;
        uint16[] weights;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    event Deposited(address indexed payer, uint256 amount);
    event WithdrawalRequested(address indexed payer, uint256 amount, uint256 unlockBlock);
    event EscrowWithdrawn(address indexed payer, uint256 amount);
    event WorkerAuthorized(address indexed payer, address indexed worker, bool allowed);
    event ReceiptSettled(address indexed payer, uint256 indexed modelId, uint256 indexed nonce, address worker, uint256 fee);
    event EarningsWithdrawn(address indexed account, uint256 amount);

    function deposit() external payable returns (uint256 escrow);
    /// @notice Starts the unlock period (genesis parameter) for `amount` of the escrow, which
    /// keeps paying receipts until withdrawn; replaces an earlier request.
    function requestWithdrawal(uint256 amount) external returns (uint256 unlockBlock);
    /// @notice Immediate where the unlock period is 0; otherwise up to an unlocked request.
    function withdrawEscrow(uint256 amount) external;
    function authorize(address worker, bool allowed) external;
    function settle(Receipt[] calldata receipts) external returns (uint256 totalFees);
    function withdrawEarnings() external returns (uint256 amount);

    function escrowOf(address payer) external view returns (uint256 amount);
    function earningsOf(address account) external view returns (uint256 amount);
    function pendingWithdrawal(address payer) external view returns (uint256 amount, uint256 unlockBlock);
    function isAuthorized(address payer, address worker) external view returns (bool allowed);
    function receiptUsed(address payer, uint256 nonce) external view returns (bool used);
    function protocolFeeBps() external view returns (uint256 bps);
    function treasury() external view returns (address account);
    function escrowUnlockBlocks() external view returns (uint256 blocks);
}
