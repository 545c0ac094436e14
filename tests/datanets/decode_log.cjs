// Decodes EVM logs and call results with ethers v6 and a shipped precompile ABI.
// stdin: {"abi": path, "logs": [{topics, data}], "result": {"fn": name, "data": hex}}
const path = require("path");
const { Interface } = require(path.join(__dirname, "..", "js", "node_modules", "ethers"));
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  const iface = new Interface(require(req.abi));
  const plain = (v) => (typeof v === "bigint" ? v.toString() : Array.isArray(v) ? v.map(plain) : v);
  const logs = (req.logs || []).map((log) => {
    const parsed = iface.parseLog(log);
    return { name: parsed.name, args: parsed.args.toArray().map(plain) };
  });
  let result = null;
  if (req.result) {
    result = iface.decodeFunctionResult(req.result.fn, req.result.data).toArray().map(plain);
  }
  process.stdout.write(JSON.stringify({ logs, result }));
});
