// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title OpenLedger model registry precompile, at 0x0000000000000000000000000000000000000901.
/// @notice A model is a LoRA adapter (content hash) on a base model, trained on named datanet
/// versions (one per datanet), priced per 1,000 tokens; the owner's share applies to what is
/// left of each fee after the protocol's share.
interface IModelRegistry {
    event ModelRegistered(uint256 indexed modelId, address indexed owner, bytes32 adapterHash);
    event ModelPriceUpdated(uint256 indexed modelId, uint256 pricePer1kTokens);
    event ModelRetired(uint256 indexed modelId);

    function registerModel(string calldata baseModel, bytes32 adapterHash, uint256[] calldata datanetIds, uint256[] calldata versions, uint256 pricePer1kTokens, uint16 ownerShareBps) external returns (uint256 modelId);
    function setPrice(uint256 modelId, uint256 pricePer1kTokens) external;
    function retireModel(uint256 modelId) external;

    function modelCount() external view returns (uint256 count);
    function getModel(uint256 modelId) external view returns (address owner, string memory baseModel, bytes32 adapterHash, uint256 pricePer1kTokens, uint16 ownerShareBps, bool retired, uint256[] memory datanetIds, uint256[] memory versions);
}
