#!/usr/bin/env node
// validate.mjs FILE... (or - for stdin): checks every object of multi-
// document YAML (as `kubectl kustomize` prints it) against the Kubernetes
// 1.34 API schema, strictly. Two checks per object:
//  1. kubernetes-models' validate() for its apiVersion/kind: ajv-compiled
//     JSON schemas (types, required fields, formats, enums);
//  2. a walk along @kubernetes/client-node's generated models (their
//     attributeTypeMap, and the required fields of their .d.ts): a key that
//     the model does not have is an "unknown field" (what the API server's
//     strict field validation rejects, and check 1 lets through).
// An apiVersion/kind that is not in the built-in API (a CRD's) is an error.
// Errors, one a line on stderr: FILE: KIND/NAMESPACE/NAME: PATH: MESSAGE
// (NAMESPACE empty for cluster-scoped objects). Exit 0 all valid, 1 invalid,
// 2 usage or unreadable/unparseable input.
// The packages: see modules.mjs.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { nodeModules, yamlFrom } from "./modules.mjs";

const NM = nodeModules("validate.mjs", "kubernetes-models");
const YAML = yamlFrom(NM);
const KM = join(NM, "kubernetes-models");
const CN = join(NM, "@kubernetes/client-node/dist/gen");
const load = (path) => import(pathToFileURL(path).href);

const files = process.argv.slice(2);
if (files.length === 0 || files.some((f) => f.startsWith("-") && f !== "-")) {
  console.error("usage: validate.mjs FILE... (- for stdin)");
  process.exit(2);
}

// ---- JSON paths: ".spec.containers[0].name", ".metadata.labels[\"a/b\"]"
const seg = (k) =>
  typeof k === "number" ? `[${k}]` : /^[A-Za-z_$][\w$-]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
const jpath = (keys) => (keys.length ? keys.map(seg).join("") : ".");
// ajv's instancePath (a JSON pointer) as keys, numbers where the value is an array.
function pointerKeys(obj, pointer) {
  const keys = [];
  let v = obj;
  for (const raw of pointer.split("/").slice(1)) {
    const k = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const key = Array.isArray(v) ? Number(k) : k;
    keys.push(key);
    v = v == null ? undefined : v[key];
  }
  return keys;
}

// ---- check 1: kubernetes-models. Returns the model class, or an error.
const SAFE_GV = /^([a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?v[0-9]+((alpha|beta)[0-9]+)?$/;
async function kmClass(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !SAFE_GV.test(apiVersion) || !existsSync(join(KM, apiVersion, "index.js")))
    return { err: [["apiVersion"], `unknown apiVersion ${JSON.stringify(apiVersion)} (not in the Kubernetes 1.34 API; CRDs are not supported)`] };
  const file = join(KM, apiVersion, `${kind}.js`);
  const cls = typeof kind === "string" && /^[A-Z][A-Za-z0-9]*$/.test(kind) && existsSync(file)
    ? (await load(file))[kind] : undefined;
  // Sub-structures (e.g. DaemonSetCondition) are classes too; kinds carry apiVersion/kind.
  if (!cls || cls.apiVersion !== apiVersion || cls.kind !== kind)
    return { err: [["kind"], `unknown kind ${JSON.stringify(kind)} in ${apiVersion} (not in the Kubernetes 1.34 API; CRDs are not supported)`] };
  return { cls };
}

// ---- check 2: client-node models.
const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
// The model of a top-level kind: e.g. apps/v1 StatefulSet -> V1StatefulSet,
// events.k8s.io/v1 Event -> EventsV1Event, v1 Event -> CoreV1Event; the
// group-version's API class (AppsV1Api, RbacAuthorizationV1Api, ...) must
// name it, so a same-named model of another group is never taken.
function cnModelName(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const words = group ? group.replace(/\.k8s\.io$/, "").split(".") : ["core"];
  const api = join(CN, "apis", `${words.map(cap).join("")}${cap(version)}Api.js`);
  const apiText = existsSync(api) ? readFileSync(api, "utf8") : "";
  for (const name of [`${cap(words[0])}${cap(version)}${kind}`, `${cap(version)}${kind}`])
    if (existsSync(join(CN, "models", `${name}.js`)) && apiText.includes(`"${name}"`)) return name;
  return null;
}

const models = new Map(); // name -> { attrs: Map(jsonName -> {type, format}), required: [jsonName] }
async function model(name) {
  if (models.has(name)) return models.get(name);
  const base = join(CN, "models", name);
  const cls = (await load(`${base}.js`))[name];
  const attrs = new Map(cls.attributeTypeMap.map((a) => [a.baseName, a]));
  // Required fields are declared without "?" in the .d.ts: `'name': string;`
  // (the map says nothing about it). Its keys are the TS names; map to JSON.
  const byTsName = new Map(cls.attributeTypeMap.map((a) => [a.name, a.baseName]));
  const required = [];
  for (const m of readFileSync(`${base}.d.ts`, "utf8").matchAll(/^\s*'([^']+)':/gm))
    if (byTsName.has(m[1])) required.push(byTsName.get(m[1]));
  const entry = { attrs, required };
  models.set(name, entry);
  return entry;
}

const kindOf = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);
const isObj = (v) => kindOf(v) === "object";

// walk(value, type, format, keys, errs): errs gets [keys, message, isTypeOrRequired].
// Numbers pass as "string": resource quantities (limits, sizeLimit, ...) are
// "string" in these models but number-or-string in the API; check 1 knows
// which string fields take numbers and reports the others.
async function walk(v, type, format, keys, errs) {
  if (v === null) return; // null is "unset" to the API server
  const bad = (want) => errs.push([keys, `wrong type: want ${want}, got ${kindOf(v)}`, true]);
  let m;
  if (type === "any") return;
  if (type === "string") { if (typeof v !== "string" && typeof v !== "number") bad("string"); return; }
  if (type === "Date") { if (typeof v !== "string") bad("string (date-time)"); return; }
  if (type === "boolean") { if (typeof v !== "boolean") bad("boolean"); return; }
  if (type === "number") {
    const int = format === "int32" || format === "int64";
    if (typeof v !== "number" || (int && !Number.isInteger(v))) bad(int ? "integer" : "number");
    return;
  }
  if (type === "IntOrString") {
    if (!(typeof v === "string" || Number.isInteger(v))) bad("integer or string");
    return;
  }
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(v)) return bad("array");
    for (let i = 0; i < v.length; i++) await walk(v[i], m[1], "", [...keys, i], errs);
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (!isObj(v)) return bad("object");
    for (const [k, x] of Object.entries(v)) await walk(x, m[1], "", [...keys, k], errs);
    return;
  }
  if (!/^[A-Z][A-Za-z0-9]*$/.test(type) || !existsSync(join(CN, "models", `${type}.js`))) {
    errs.push([keys, `validator: no model for type ${JSON.stringify(type)}`, false]);
    return;
  }
  if (!isObj(v)) return bad("object");
  const { attrs, required } = await model(type);
  for (const r of required)
    if (v[r] === undefined || v[r] === null) errs.push([keys, `missing required field "${r}"`, true]);
  for (const [k, x] of Object.entries(v)) {
    const a = attrs.get(k);
    if (!a) errs.push([[...keys, k], `unknown field "${k}"`, false]);
    else await walk(x, a.type, a.format, [...keys, k], errs);
  }
}

// ---- one object: a list of "PATH: MESSAGE".
async function check(obj) {
  const { apiVersion, kind } = obj;
  const { cls, err } = await kmClass(apiVersion, kind);
  if (err) return [`${jpath(err[0])}: ${err[1]}`];
  const out = [];
  const seen = new Set(); // paths check 1 reported
  try {
    new cls(obj).validate();
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    const byPath = new Map(); // ajv reports oneOf branches separately: one line a path
    for (const x of e.errors) {
      const p = jpath(pointerKeys(obj, x.instancePath));
      if (!byPath.has(p)) byPath.set(p, new Set());
      byPath.get(p).add(x.message);
    }
    for (const [p, msgs] of byPath) { seen.add(p); out.push(`${p}: ${[...msgs].join("; ")}`); }
  }
  const name = cnModelName(apiVersion, kind);
  if (!name) return [...out, `.: validator: no @kubernetes/client-node model for ${apiVersion} ${kind}`];
  const errs = [];
  await walk(obj, name, "", [], errs);
  // Type and required-field findings repeat check 1's; unknown fields do not.
  for (const [keys, msg, dup] of errs)
    if (!(dup && seen.has(jpath(keys)))) out.push(`${jpath(keys)}: ${msg}`);
  return out;
}

function parse(file) {
  let text;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (e) {
    console.error(`validate.mjs: ${file}: ${e.message}`);
    process.exit(2);
  }
  const docs = YAML.parseAllDocuments(text, { merge: true });
  const objs = [];
  for (const d of docs) {
    if (d.errors?.length) {
      console.error(`validate.mjs: ${file}: YAML: ${d.errors[0].message.split("\n")[0]}`);
      process.exit(2);
    }
    const v = d.toJS({ maxAliasCount: 100 });
    if (v != null) objs.push(v); // empty documents
  }
  return objs;
}

let failed = false;
for (const file of files) {
  const shown = file === "-" ? "<stdin>" : file;
  const objs = parse(file);
  let bad = 0;
  for (const [i, obj] of objs.entries()) {
    const errs = isObj(obj) ? await check(obj) : [`.: document ${i + 1} is not a mapping`];
    if (!errs.length) continue;
    bad++;
    const md = isObj(obj) && isObj(obj.metadata) ? obj.metadata : {};
    const id = `${isObj(obj) ? obj.kind ?? "" : ""}/${md.namespace ?? ""}/${md.name ?? ""}`;
    for (const e of errs) console.error(`${shown}: ${id}: ${e}`);
  }
  if (bad) failed = true;
  else console.log(`${shown}: ${objs.length} objects valid (Kubernetes 1.34 schema)`);
}
process.exit(failed ? 1 : 0);
