// An adapter of the client conformance harness for the original design document's
// JavaScript client (testdata/seed/js_client.js), run as it is with the harness's
// URL: the content of each chunk it logs goes to stdout, the rest to stderr; it
// exits 0 once it logged the complete response (the seed's own last lines).
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const [url] = process.argv.slice(2);
const seed = fileURLToPath(new URL("../../testdata/seed/js_client.js", import.meta.url));
console.log = (...args) => {
  if (args[0] === "Chunk:") process.stdout.write(String(args[1]));
  else console.error(...args);
};
process.argv = [process.argv[0], seed, url];
createRequire(import.meta.url)(seed);
