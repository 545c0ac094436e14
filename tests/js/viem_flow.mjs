// A viem client against a running node: define the chain, send an EIP-1559 transfer with a
// local account, wait for the receipt, watch a block, read balances and fee data.
// Prints one JSON object with what it saw. Usage: node viem_flow.mjs RPC_URL PRIVATE_KEY TO
import { createPublicClient, createWalletClient, defineChain, http, parseEther } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const [url, key, to] = process.argv.slice(2);
const publicClient0 = createPublicClient({ transport: http(url) });
const chainId = await publicClient0.getChainId();
const chain = defineChain({
  id: chainId,
  name: "OpenLedger devnet",
  nativeCurrency: { name: "OPEN", symbol: "OPEN", decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const publicClient = createPublicClient({ chain, transport: http(url) });
const account = privateKeyToAccount(key);
const wallet = createWalletClient({ account, chain, transport: http(url) });

const before = await publicClient.getBalance({ address: to });
const fees = await publicClient.estimateFeesPerGas();
const hash = await wallet.sendTransaction({ to, value: parseEther("1.5") });
const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100 });
const after = await publicClient.getBalance({ address: to });
const block = await publicClient.getBlock({ blockNumber: receipt.blockNumber });
const history = await publicClient.getFeeHistory({ blockCount: 2, rewardPercentiles: [50] });

console.log(JSON.stringify({
  chainId,
  status: receipt.status,
  type: receipt.type,
  delta: (after - before).toString(),
  blockHasTx: block.transactions.includes(hash),
  maxFeePerGas: fees.maxFeePerGas.toString(),
  feeHistoryBlocks: history.baseFeePerGas.length,
}));
