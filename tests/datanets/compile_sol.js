// Compiles Solidity sources with solc-js (tests/js/node_modules), evmVersion prague.
// stdin: {"path": "source", ...}; stdout: solc's standard JSON output.
const path = require("path");
const solc = require(path.join(__dirname, "..", "js", "node_modules", "solc"));
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const sources = JSON.parse(input);
  const request = {
    language: "Solidity",
    sources: Object.fromEntries(Object.entries(sources).map(([k, v]) => [k, { content: v }])),
    settings: {
      evmVersion: "prague",
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  process.stdout.write(solc.compile(JSON.stringify(request)));
});
