/**
 * Before the e2e suite: the Pulumi CLI (npm run pulumi:install builds it from Go sources the
 * first time, ~4 min; afterwards a ~1 s check) and the package (dist/ and the
 * node_modules/pulumi-encdisk link the programs require by name). Makes `npm run test:e2e`
 * self-sufficient from a clean clone after `npm ci`.
 */
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

module.exports = async function globalSetup() {
  const root = path.resolve(__dirname, "../..");
  const t0 = Date.now();
  execFileSync("bash", [path.join(root, "scripts/pulumi-install.sh")], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  const t1 = Date.now();
  process.stderr.write(`[e2e] Pulumi CLI ready in ${((t1 - t0) / 1000).toFixed(1)} s\n`);
  // Always rebuild: the programs load dist/ at run time, and a stale dist/ would test old code.
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  process.stderr.write(`[e2e] npm run build in ${((Date.now() - t1) / 1000).toFixed(1)} s\n`);
  const pulumi = path.join(root, ".tools/pulumi/bin/pulumi");
  if (!fs.existsSync(pulumi)) throw new Error(`no Pulumi CLI at ${pulumi} after npm run pulumi:install`);
};
