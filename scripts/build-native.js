#!/usr/bin/env node
// Builds native/build/gcm.node, the block store's AES-256-GCM (see native/gcm.c and
// provider/engine/blockstore/gcm.ts), with the C compiler ($CC or cc) and the Node-API headers
// that ship with Node (<prefix>/include/node). It links nothing: Node-API and OpenSSL symbols
// come from the node binary when the addon loads. Skipped when the addon is newer than its
// source. Without a compiler the engine runs on node:crypto instead, slower; this says so and
// exits 0, so an install never fails for it.
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const src = path.join(root, "native", "gcm.c");
const out = path.join(root, "native", "build", "gcm.node");

function mtime(f) {
  try {
    return fs.statSync(f).mtimeMs;
  } catch {
    return -1;
  }
}

if (process.env.ENCDISK_NATIVE === "0") process.exit(0);
if (mtime(out) > mtime(src) && mtime(out) > mtime(__filename)) process.exit(0);
const include = path.resolve(path.dirname(process.execPath), "..", "include", "node");
if (!fs.existsSync(path.join(include, "node_api.h"))) {
  console.warn(`build-native: no Node-API headers at ${include}; the block store will use node:crypto (slower)`);
  process.exit(0);
}
fs.mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
try {
  execFileSync(process.env.CC || "cc", ["-O2", "-fPIC", "-shared", "-pthread", "-Wall", `-I${include}`, src, "-o", tmp], { stdio: "inherit" });
  fs.renameSync(tmp, out); // atomic: a process that loaded the old file keeps it
} catch (e) {
  fs.rmSync(tmp, { force: true });
  console.warn(`build-native: could not build ${path.relative(root, out)} (${e.message}); the block store will use node:crypto (slower)`);
}
