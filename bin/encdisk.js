#!/usr/bin/env node
"use strict";
// Every error is one line on stderr with a stable [Code]: main() prints its own; this catches
// what escapes it (and a package whose dist/ was never built).
function fail(err) {
  let line;
  try {
    line = require("../dist/provider/engine/errors.js").toEngineError(err).message;
  } catch {
    line = `[InternalError] ${err && err.message ? err.message : err}`;
  }
  process.stderr.write(`encdisk: ${String(line).replace(/\s*\n\s*/g, "; ")}\n`);
  process.exitCode = 1;
}
let main;
try {
  main = require("../dist/provider/engine/cli/main.js").main;
} catch (err) {
  if (err && err.code === "MODULE_NOT_FOUND" && /dist[\\/]provider[\\/]engine[\\/]cli[\\/]main/.test(String(err.message))) {
    process.stderr.write("encdisk: [InternalError] the package is not built (dist/ is missing): run npm run build\n");
    process.exitCode = 1;
  } else fail(err);
}
if (main) main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, fail);
