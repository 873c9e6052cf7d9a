// Offline schema check of Kubernetes manifests (what `estuary k8s` renders,
// after kustomize): core and batch objects against Kubernetes' OpenAPI
// schemas (npm kubernetes-models), the TFJob against tfjob-v1.schema.json
// (ajv) with each replica's pod template against PodTemplateSpec.
//
// Unknown fields are errors, as with `kubectl apply --validate=strict`:
// kubernetes-models' compiled validators do not reject them, so each object
// is validated through a Proxy that records which keys the validator read
// (every key its schema defines, or every key of a map it enumerates); a
// key it never read is not in the schema.
//
// Usage: node validate.mjs FILE.yaml...  ("-" reads stdin). Prints one line
// per error: FILE: document N (Kind name): /json/path: message. Exit 0 if
// every document is valid, 1 otherwise, 2 on bad usage.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import Ajv from "ajv";
import { ConfigMap, PersistentVolumeClaim, Pod, PodTemplateSpec, Service } from "kubernetes-models/v1";
import { Job } from "kubernetes-models/batch/v1";
import { ObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1";

// A model's compiled validator, called on any object (the recording proxy):
// returns ajv's errors, [] when valid.
function modelValidator(Model) {
  return (data) => {
    try {
      Model.prototype.validate.call(data);
      return [];
    } catch (e) {
      if (Array.isArray(e.errors)) return e.errors;
      return [{ instancePath: "", message: e.message }];
    }
  };
}
const validatePod = modelValidator(Pod);
const validatePodTemplateSpec = modelValidator(PodTemplateSpec);
const validateObjectMeta = modelValidator(ObjectMeta);

const here = path.dirname(fileURLToPath(import.meta.url));
const ajv = new Ajv({ allErrors: true, strict: true });
const validateTfJob = ajv.compile(
  JSON.parse(fs.readFileSync(path.join(here, "tfjob-v1.schema.json"), "utf8")));

const validators = {
  "v1/ConfigMap": modelValidator(ConfigMap),
  "v1/Pod": validatePod,
  "v1/PersistentVolumeClaim": modelValidator(PersistentVolumeClaim),
  "v1/Service": modelValidator(Service),
  "batch/v1/Job": modelValidator(Job),
};

// Runs `validate` on `data` through recording proxies; returns ajv-style
// errors plus one per key the validator never read.
function strictValidate(validate, data, basePath = "") {
  const read = new WeakMap();        // target -> Set of keys read
  const enumerated = new WeakSet();  // targets whose keys were listed (maps)
  const proxies = new WeakMap();
  const wrap = (value) => {
    if (value === null || typeof value !== "object") return value;
    if (proxies.has(value)) return proxies.get(value);
    read.set(value, new Set());
    const p = new Proxy(value, {
      get(target, key, receiver) {
        if (typeof key === "string") read.get(target).add(key);
        return wrap(Reflect.get(target, key, receiver));
      },
      has(target, key) {
        if (typeof key === "string") read.get(target).add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        enumerated.add(target);
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(value, p);
    return p;
  };
  const errors = [];
  {
    for (const e of validate(wrap(data))) {
      errors.push(`${basePath}${e.instancePath || "/"}: ${e.message ?? e.keyword}` +
                  (e.params?.allowedValues ? ` (${e.params.allowedValues.join(", ")})` : ""));
    }
  }
  const walk = (value, where) => {
    if (value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${where}/${i}`));
      return;
    }
    const keys = read.get(value);
    if (keys === undefined) return;  // the validator never reached it
    for (const k of Object.keys(value)) {
      if (!enumerated.has(value) && !keys.has(k)) {
        errors.push(`${basePath}${where}/${k}: unknown field "${k}"`);
      } else {
        walk(value[k], `${where}/${k}`);
      }
    }
  };
  walk(data, "");
  return errors;
}

function checkTfJob(doc) {
  const errors = [];
  if (!validateTfJob(doc)) {
    for (const e of validateTfJob.errors) {
      const extra = e.params?.additionalProperty ? ` "${e.params.additionalProperty}"` :
                    e.params?.propertyName ? ` "${e.params.propertyName}"` :
                    e.params?.allowedValues ? ` (${e.params.allowedValues.join(", ")})` : "";
      errors.push(`${e.instancePath || "/"}: ${e.message}${extra}`);
    }
  }
  if (doc?.metadata) errors.push(...strictValidate(validateObjectMeta, doc.metadata, "/metadata"));
  for (const [type, spec] of Object.entries(doc?.spec?.tfReplicaSpecs ?? {})) {
    if (!spec?.template) continue;
    const where = `/spec/tfReplicaSpecs/${type}/template`;
    errors.push(...strictValidate(validatePodTemplateSpec, spec.template, where));
    const names = (spec.template.spec?.containers ?? []).map((c) => c.name);
    if (!names.includes("tensorflow")) {
      errors.push(`${where}/spec/containers: no container named "tensorflow" ` +
                  `(the operator injects TF_CONFIG only into it)`);
    }
  }
  return errors;
}

function checkDocument(doc) {
  if (doc === null || typeof doc !== "object") return ["/: not a Kubernetes object"];
  const key = `${doc.apiVersion}/${doc.kind}`;
  if (key === "kubeflow.org/v1/TFJob") return checkTfJob(doc);
  const validate = validators[key];
  if (!validate) return [`/: unsupported apiVersion/kind "${key}"`];
  return strictValidate(validate, doc);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE.yaml... (- for stdin)");
  process.exit(2);
}
let bad = 0, count = 0;
for (const file of files) {
  const text = fs.readFileSync(file === "-" ? 0 : file, "utf8");
  let docs;
  try {
    docs = yaml.loadAll(text).filter((d) => d !== null && d !== undefined);
  } catch (e) {
    console.log(`${file}: ${e.message.split("\n")[0]}`);
    bad++;
    continue;
  }
  docs.forEach((doc, i) => {
    count++;
    const label = `${file}: document ${i + 1} (${doc?.kind} ${doc?.metadata?.name})`;
    for (const e of checkDocument(doc)) {
      console.log(`${label}: ${e}`);
      bad++;
    }
  });
}
console.log(`validate: ${count} documents, ${bad} errors`);
process.exit(bad === 0 ? 0 : 1);
