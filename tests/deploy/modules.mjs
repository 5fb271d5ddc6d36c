// modules.mjs: where validate.mjs and tojson.mjs find their npm packages —
// DEPLOY_NODE_MODULES, else build/deploy-tools/node_modules (filled by
// deploy_tools of tests/integration/deploy_lib.sh), else
// tests/deploy/node_modules — and the yaml parser from there.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

// nodeModules(who, pkg): the first directory holding pkg; exits 2 with a
// message naming `who` when none does.
export function nodeModules(who, pkg) {
  const nm = [
    process.env.DEPLOY_NODE_MODULES,
    resolve(here, "../../build/deploy-tools/node_modules"),
    join(here, "node_modules"),
  ].find((d) => d && existsSync(join(d, pkg)));
  if (!nm) {
    console.error(`${who}: npm packages not installed (run deploy_tools of tests/integration/deploy_lib.sh)`);
    process.exit(2);
  }
  return nm;
}

// yamlFrom(nm): the yaml package of that node_modules directory.
export const yamlFrom = (nm) => createRequire(join(nm, "..", "x.js"))("yaml");
