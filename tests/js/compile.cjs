// Compile Solidity with solc-js: standard JSON input on stdin, standard JSON output on stdout.
// evmVersion defaults to "prague" (solc's own default, osaka, is newer than py-evm supports).
const solc = require("solc");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  request.settings = request.settings || {};
  request.settings.evmVersion = request.settings.evmVersion || "prague";
  request.settings.outputSelection = request.settings.outputSelection || {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  };
  process.stdout.write(solc.compile(JSON.stringify(request)));
});
