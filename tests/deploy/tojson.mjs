#!/usr/bin/env node
// tojson.mjs FILE (or - for stdin): the documents of multi-document YAML
// (e.g. `kubectl kustomize` output) as one JSON array on stdout, empty
// documents left out; for tests that query rendered manifests with jq.
// Exit 2 on usage, unreadable file or YAML error (packages: modules.mjs).
import { readFileSync } from "node:fs";
import { nodeModules, yamlFrom } from "./modules.mjs";

const die = (msg) => { console.error(`tojson.mjs: ${msg}`); process.exit(2); };
const YAML = yamlFrom(nodeModules("tojson.mjs", "yaml"));

const args = process.argv.slice(2);
if (args.length !== 1) die("usage: tojson.mjs FILE (- for stdin)");
let text;
try {
  text = readFileSync(args[0] === "-" ? 0 : args[0], "utf8");
} catch (e) {
  die(`${args[0]}: ${e.message}`);
}
const out = [];
for (const d of YAML.parseAllDocuments(text, { merge: true })) {
  if (d.errors?.length) die(`${args[0]}: YAML: ${d.errors[0].message.split("\n")[0]}`);
  const v = d.toJS({ maxAliasCount: 100 });
  if (v != null) out.push(v);
}
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
