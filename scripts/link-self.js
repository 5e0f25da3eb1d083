#!/usr/bin/env node
// The dynamic-provider host evaluates the serialized provider with require() rooted at the
// stack program's directory, and the hooks require this package *by name*. Programs inside
// this repository (examples/, tests) therefore need node_modules/pulumi-encdisk to resolve to
// the repository itself. An installed copy (npm install pulumi-encdisk) needs no link.
"use strict";
const fs = require("fs");
const path = require("path");
const root = path.resolve(__dirname, "..");
const nm = path.join(root, "node_modules");
const link = path.join(nm, "pulumi-encdisk");
if (!fs.existsSync(nm)) process.exit(0);
try {
  const st = fs.lstatSync(link);
  if (st.isSymbolicLink() && path.resolve(nm, fs.readlinkSync(link)) === root) process.exit(0);
  fs.rmSync(link, { recursive: true, force: true });
} catch (e) {
  if (e.code !== "ENOENT") throw e;
}
fs.symlinkSync("..", link, "dir");
