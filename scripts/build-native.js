#!/usr/bin/env node
// Builds the block store's AES-256-GCM addons (see native/gcm.c and
// provider/engine/blockstore/gcm.ts) with the C compiler ($CC or cc) and the Node-API headers
// that ship with Node (<prefix>/include/node):
// - native/build/gcm-openssl.node: the OpenSSL EVP calls of the node binary itself (no
//   library linked: Node-API and OpenSSL symbols resolve when the addon loads);
// - native/build/gcm-ring.node: the same addon over ring's AES-GCM (native/ring, a Rust static
//   library built with cargo from crates.io), ~1.5-2x faster where the CPU has VAES.
// Each is skipped when it is newer than its sources; nothing but native/build/ is left behind.
// Whatever cannot be built is said and skipped: the engine then uses the next best (ring,
// openssl, node:crypto), so an install never fails for it.
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const root = path.resolve(__dirname, "..");
const native = path.join(root, "native");
const outDir = path.join(native, "build");
const ringDir = path.join(native, "ring");

function mtime(f) {
  try {
    return fs.statSync(f).mtimeMs;
  } catch {
    return -1;
  }
}

/** True when `out` exists and is newer than every source. */
function fresh(out, sources) {
  const t = mtime(out);
  return t > 0 && sources.every((s) => mtime(s) < t);
}

/** Runs cc into a temp file, then renames it into place (a process that loaded the old one keeps it). */
function cc(out, args) {
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync(process.env.CC || "cc", [...args, "-o", tmp], { stdio: "inherit" });
    fs.renameSync(tmp, out);
    return true;
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    console.warn(`build-native: could not build ${path.relative(root, out)}: ${e.message}`);
    return false;
  }
}

function cargo() {
  for (const c of [process.env.CARGO, "cargo", path.join(os.homedir(), ".cargo", "bin", "cargo")]) {
    if (!c) continue;
    try {
      execFileSync(c, ["--version"], { stdio: "ignore" });
      return c;
    } catch {
      /* next */
    }
  }
  return null;
}

if (process.env.ENCDISK_NATIVE === "0") process.exit(0);
const include = path.resolve(path.dirname(process.execPath), "..", "include", "node");
if (!fs.existsSync(path.join(include, "node_api.h"))) {
  console.warn(`build-native: no Node-API headers at ${include}; the block store will use node:crypto (slower)`);
  process.exit(0);
}
fs.mkdirSync(outDir, { recursive: true });
const src = path.join(native, "gcm.c");
const common = ["-O2", "-fPIC", "-shared", "-pthread", "-Wall", `-I${include}`];

const openssl = path.join(outDir, "gcm-openssl.node");
if (!fresh(openssl, [src, __filename])) cc(openssl, [...common, src]);

const ring = path.join(outDir, "gcm-ring.node");
const ringSources = [src, __filename, path.join(ringDir, "Cargo.toml"), path.join(ringDir, "Cargo.lock"), path.join(ringDir, "src", "lib.rs")];
if (!fresh(ring, ringSources)) {
  const bin = cargo();
  if (!bin) {
    console.warn("build-native: no cargo; skipping the ring cipher (the engine uses OpenSSL's)");
  } else {
    // Cargo's build tree (~60 MB) goes to a temporary directory removed afterwards, so an
    // installed package holds only the addon; $CARGO_TARGET_DIR, when set, is used and kept.
    const target = process.env.CARGO_TARGET_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-ring-"));
    try {
      execFileSync(bin, ["build", "--release", "--locked", "--manifest-path", path.join(ringDir, "Cargo.toml")], {
        stdio: "inherit",
        env: { ...process.env, CARGO_TARGET_DIR: target },
      });
      const lib = path.join(target, "release", "libencdisk_gcm.a");
      cc(ring, [...common, "-DENCDISK_RING", src, lib, "-Wl,--gc-sections", "-s", "-ldl", "-lm"]);
    } catch (e) {
      console.warn(`build-native: cargo could not build native/ring (${e.message}); the engine uses OpenSSL's cipher`);
    } finally {
      if (!process.env.CARGO_TARGET_DIR) fs.rmSync(target, { recursive: true, force: true });
    }
  }
}
