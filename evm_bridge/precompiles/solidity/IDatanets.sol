// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title OpenLedger datanets precompile, at 0x0000000000000000000000000000000000000900.
/// @notice Community data pools: contributions (content hash, size, metadata URI) recorded on
/// chain with a contributor stake, curated (accept / reject), challengeable with a bond while
/// the stake is locked, and snapshotted into versions that models name. Contents live off
/// chain, addressed by their hash. Reverts carry Error(string) reasons.
/// Contribution status: 1 pending, 2 accepted, 3 rejected, 4 challenged, 5 slashed.
interface IDatanets {
    event DatanetCreated(uint256 indexed datanetId, address indexed owner, string name, string metadataUri);
    event DatanetUpdated(uint256 indexed datanetId);
    event CuratorAdded(uint256 indexed datanetId, address indexed curator);
    event CuratorRemoved(uint256 indexed datanetId, address indexed curator);
    event Contributed(uint256 indexed datanetId, uint256 indexed contributionId, address indexed contributor, bytes32 contentHash, uint64 size, uint256 stake);
    event Accepted(uint256 indexed datanetId, uint256 indexed contributionId, address indexed curator, uint256 acceptIndex);
    event Rejected(uint256 indexed datanetId, uint256 indexed contributionId, address indexed curator, uint256 forfeited);
    event Challenged(uint256 indexed contributionId, address indexed challenger, uint256 bond);
    event ChallengeResolved(uint256 indexed contributionId, bool upheld, uint256 moved);
    event StakeReleased(uint256 indexed contributionId, address indexed contributor, uint256 stake);
    event VersionCreated(uint256 indexed datanetId, uint256 indexed version, uint256 acceptedCount, bytes32 root);

    function createDatanet(string calldata name, string calldata metadataUri, address[] calldata curators, uint256 stake, uint256 fee, uint16 rejectForfeitBps, uint256 curatorBond, uint256 challengeBond) external returns (uint256 datanetId);
    function updateDatanet(uint256 datanetId, string calldata metadataUri, uint256 stake, uint256 fee, uint16 rejectForfeitBps, uint256 curatorBond, uint256 challengeBond) external;
    function addCurator(uint256 datanetId, address curator) external;
    function removeCurator(uint256 datanetId, address curator) external;
    /// @notice msg.value must be the datanet's stake plus its fee.
    function contribute(uint256 datanetId, bytes32 contentHash, uint64 size, string calldata metadataUri) external payable returns (uint256 contributionId);
    /// @notice msg.value must be the datanet's curator bond.
    function accept(uint256 contributionId) external payable returns (uint256 acceptIndex);
    function reject(uint256 contributionId) external returns (uint256 forfeited);
    /// @notice msg.value is the challenger's bond (at least the datanet's challenge bond).
    function challenge(uint256 contributionId) external payable;
    function resolveChallenge(uint256 contributionId, bool upheld) external returns (uint256 moved);
    function releaseStake(uint256 contributionId) external;
    function createVersion(uint256 datanetId) external returns (uint256 version);

    function datanetCount() external view returns (uint256 count);
    function contributionCount() external view returns (uint256 count);
    function getDatanet(uint256 datanetId) external view returns (address owner, string memory name, string memory metadataUri, uint256 stake, uint256 fee, uint256 contributionCount, uint256 acceptedCount, uint256 versionCount);
    function getDatanetRules(uint256 datanetId) external view returns (uint16 rejectForfeitBps, uint256 curatorBond, uint256 challengeBond);
    function isCurator(uint256 datanetId, address account) external view returns (bool curator);
    function getContribution(uint256 contributionId) external view returns (uint256 datanetId, address contributor, bytes32 contentHash, uint64 size, uint8 status, uint256 stake, address curator, uint256 acceptIndex);
    function getContributionMetadataUri(uint256 contributionId) external view returns (string memory uri);
    function datanetContributions(uint256 datanetId, uint256 offset, uint256 limit) external view returns (uint256[] memory contributionIds);
    function getVersion(uint256 datanetId, uint256 version) external view returns (uint256 acceptedCount, bytes32 root, uint256 blockNumber);
    function versionContains(uint256 datanetId, uint256 version, uint256 contributionId) external view returns (bool contained);
}
