// Validate contracts/asyncapi.yaml with the reference AsyncAPI parser (offline).
// Usage: NODE_PATH=<dir with node_modules> node contracts/validate_asyncapi.mjs FILE
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { resolve } from "node:path";
const require = createRequire(resolve(process.env.NODE_PATH) + "/");
const { Parser } = require("@asyncapi/parser");

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"), { source: file });
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  console.log(`${["error", "warning", "info", "hint"][d.severity]} ${d.code} at ${d.path.join(".")}: ${d.message}`);
}
if (!document || errors.length) {
  console.log(`INVALID: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`VALID: ${document.channels().length} channels, ${document.messages().length} messages`);
