// An ethers v6 client against a running node: compile an ERC-20 with solc (evmVersion prague),
// deploy it with an EIP-1559 transaction, transfer, read the Transfer events with eth_getLogs,
// and get a revert reason from a failing call. Prints one JSON object with what it saw.
// Usage: node erc20_flow.mjs RPC_URL PRIVATE_KEY RECIPIENT
import { createRequire } from "module";
import { ethers } from "ethers";

const require = createRequire(import.meta.url);
const solc = require("solc");

const SOURCE = `
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract OpenToken {
    string public constant name = "Open Test Token";
    string public constant symbol = "OTT";
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    error Unused();
    constructor(uint256 supply) { totalSupply = supply; balanceOf[msg.sender] = supply; emit Transfer(address(0), msg.sender, supply); }
    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "ERC20: transfer amount exceeds balance");
        balanceOf[msg.sender] -= value; balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value; emit Approval(msg.sender, spender, value); return true;
    }
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        require(allowance[from][msg.sender] >= value, "ERC20: insufficient allowance");
        require(balanceOf[from] >= value, "ERC20: transfer amount exceeds balance");
        allowance[from][msg.sender] -= value; balanceOf[from] -= value; balanceOf[to] += value;
        emit Transfer(from, to, value); return true;
    }
}`;

function compile() {
  const input = {
    language: "Solidity",
    sources: { "OpenToken.sol": { content: SOURCE } },
    settings: { evmVersion: "prague", optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  const c = out.contracts["OpenToken.sol"].OpenToken;
  return { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
}

const [url, key, recipient] = process.argv.slice(2);
// cacheTimeout -1: ethers caches identical reads for 250 ms by default, which hands out a stale
// nonce when blocks come faster than that (instant mining), as with anvil or Hardhat.
const provider = new ethers.JsonRpcProvider(url, undefined, { pollingInterval: 100, cacheTimeout: -1 });
const wallet = new ethers.Wallet(key, provider);
const { abi, bytecode } = compile();
const network = await provider.getNetwork();
const factory = new ethers.ContractFactory(abi, bytecode, wallet);
const supply = ethers.parseUnits("1000000", 18);
const token = await factory.deploy(supply, { type: 2 });
const deployTx = token.deploymentTransaction();
await token.waitForDeployment();
const address = await token.getAddress();

const amount = ethers.parseUnits("250", 18);
const tx = await token.transfer(recipient, amount);
const receipt = await tx.wait();

const transferTopic = token.interface.getEvent("Transfer").topicHash;
const logs = await provider.getLogs({ address, topics: [transferTopic], fromBlock: 0, toBlock: "latest" });
const decoded = logs.map((l) => token.interface.parseLog(l));

let revertReason = null;
try {
  await token.transfer.staticCall(recipient, supply * 2n);
} catch (err) {
  revertReason = err.reason ?? err.shortMessage;
}
let estimateRevert = null;
try {
  await token.transfer.estimateGas(recipient, supply * 2n);
} catch (err) {
  estimateRevert = err.reason ?? err.shortMessage;
}

console.log(JSON.stringify({
  chainId: network.chainId.toString(),
  deployType: deployTx.type,
  address,
  transferStatus: receipt.status,
  transferType: tx.type,
  recipientBalance: (await token.balanceOf(recipient)).toString(),
  senderBalance: (await token.balanceOf(wallet.address)).toString(),
  logs: decoded.map((d) => ({ from: d.args.from, to: d.args.to, value: d.args.value.toString() })),
  revertReason,
  estimateRevert,
}));
