// Validate KEDA / prometheus-operator custom resources against their published CRD schemas.
//
//   node crd_validate.cjs <install dir of scripts/setup_crd_validators.sh>  < docs.json
//
// stdin: a JSON array of objects; stdout: a JSON array with, for each object, the list of
// problems ("/spec/triggers/0/type: must be string"); an empty list means valid.
// One process validates many objects: starting node costs more than validating.
//
// The @kubernetes-models packages compile each CRD's openAPIV3Schema with ajv, which checks
// types, enums, patterns and required fields but lets unknown fields through (ajv's default
// for a schema without additionalProperties: false). The API server rejects unknown fields
// (kubectl's default field validation is Strict), so we add that check: every object of the
// document is wrapped in a Proxy that records which keys the compiled validator looks up. A
// structured schema looks up each of its declared properties; a map (additionalProperties)
// enumerates its keys. A key of a structured object that the validator never looked up is a
// field the schema does not declare. Objects the validator never touched are free-form
// (x-kubernetes-preserve-unknown-fields) and are not judged.
"use strict";

const path = require("node:path");
const { pathToFileURL } = require("node:url");

const MODELS = {
  "keda.sh/v1alpha1/ScaledObject": "keda/keda.sh/v1alpha1/ScaledObject.js",
  "monitoring.coreos.com/v1/PodMonitor": "prometheus-operator/monitoring.coreos.com/v1/PodMonitor.js",
  "monitoring.coreos.com/v1/ServiceMonitor": "prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js",
};

async function loadModel(dir, key) {
  const file = path.join(dir, "node_modules", "@kubernetes-models", MODELS[key]);
  const mod = await import(pathToFileURL(file).href);
  const name = key.split("/").pop();
  // keda 0.4.2 is CommonJS: node may expose its exports only as the default export.
  const Model = mod[name] || (mod.default && mod.default[name]);
  if (typeof Model !== "function") throw new Error(`${file} does not export ${name}`);
  return Model;
}

function watch(value, where, nodes) {
  if (value === null || typeof value !== "object") return value;
  const node = { where, value, read: new Set(), listed: false };
  nodes.push(node);
  const copy = Array.isArray(value)
    ? value.map((v, i) => watch(v, `${where}/${i}`, nodes))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, watch(v, `${where}/${k}`, nodes)]));
  return new Proxy(copy, {
    get(target, key, receiver) {
      if (typeof key === "string") node.read.add(key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      if (typeof key === "string") node.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      node.listed = true;
      return Reflect.ownKeys(target);
    },
  });
}

function validateOne(Model, doc) {
  const nodes = [];
  const watched = watch(doc, "", nodes);
  const problems = [];
  try {
    // The model's validate() runs the compiled schema on `this`: call it on the watched copy
    // (constructing a Model would copy the document and read every key).
    Model.prototype.validate.call(watched);
  } catch (err) {
    if (!Array.isArray(err.errors)) throw err;
    for (const e of err.errors) {
      const extra = e.params && e.params.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : "";
      problems.push(`${e.instancePath || "/"}: ${e.message}${extra}`);
    }
  }
  for (const n of nodes) {
    if (Array.isArray(n.value) || n.listed || n.read.size === 0) continue;
    for (const key of Object.keys(n.value)) {
      if (!n.read.has(key)) problems.push(`${n.where || "/"}: unknown field ${JSON.stringify(key)}`);
    }
  }
  return problems;
}

async function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: node crd_validate.cjs INSTALL_DIR < docs.json");
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const docs = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const models = {};
  const out = [];
  for (const doc of docs) {
    const key = `${doc.apiVersion}/${doc.kind}`;
    if (!(key in MODELS)) {
      out.push([`/: no validator for ${key}; known: ${Object.keys(MODELS).join(", ")}`]);
      continue;
    }
    models[key] = models[key] || (await loadModel(dir, key));
    out.push(validateOne(models[key], doc));
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(2);
});
