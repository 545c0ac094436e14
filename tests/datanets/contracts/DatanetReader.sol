// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import "IDatanets.sol";
import "IModelRegistry.sol";

/// Reads datanet records through the precompile interface, as any contract would.
contract DatanetReader {
    IDatanets constant DATANETS = IDatanets(0x0000000000000000000000000000000000000900);
    IModelRegistry constant MODELS = IModelRegistry(0x0000000000000000000000000000000000000901);

    function ownerAndName(uint256 datanetId) external view returns (address owner, string memory name, uint256 accepted) {
        (owner, name, , , , , accepted, ) = DATANETS.getDatanet(datanetId);
    }

    function contributorOf(uint256 contributionId) external view returns (address contributor, bytes32 contentHash, uint8 status) {
        (, contributor, contentHash, , status, , , ) = DATANETS.getContribution(contributionId);
    }

    /// Sums the accepted contributions over every version a model was trained on.
    function trainingSetSize(uint256 modelId) external view returns (uint256 total) {
        (, , , , , , uint256[] memory datanetIds, uint256[] memory versions) = MODELS.getModel(modelId);
        for (uint256 i = 0; i < datanetIds.length; i++) {
            (uint256 count, , ) = DATANETS.getVersion(datanetIds[i], versions[i]);
            total += count;
        }
    }

    /// A state-changing call under STATICCALL: must fail.
    function writeUnderStaticcall(uint256 datanetId) external view returns (bool ok, bytes memory data) {
        (ok, data) = address(DATANETS).staticcall(abi.encodeCall(IDatanets.createVersion, (datanetId)));
    }

    /// DELEGATECALL into the precompile (acting as the caller): must fail.
    function viaDelegatecall(uint256 datanetId) external returns (bool ok, bytes memory data) {
        (ok, data) = address(DATANETS).delegatecall(abi.encodeCall(IDatanets.createVersion, (datanetId)));
    }
}
