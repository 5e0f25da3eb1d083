/**
 * What `npm pack` ships: only what users run (the built provider and CLI, the addon's sources
 * and build script, schema.json), no tests, benchmarks, chaos scripts or source maps without
 * their sources. The tarball installed into an empty project, built and run under the real
 * Pulumi CLI is test/e2e/package.e2e.ts.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

interface PackJson {
  size: number;
  unpackedSize: number;
  files: Array<{ path: string; size: number }>;
}

let pack: PackJson;
let files: string[];
beforeAll(() => {
  // --ignore-scripts: `prepare` would rebuild dist/ under the other tests (pretest built it).
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  pack = (JSON.parse(out) as PackJson[])[0];
  files = pack.files.map((f) => f.path);
}, 60_000);

test("the tarball holds no test, benchmark or chaos code, no source map and no build tree", () => {
  const bad = files.filter((f) => /(^|\/)(test|bench|chaos|target)\//.test(f) || f.startsWith("dist/scripts/") || f.endsWith(".map") || f.endsWith(".tsbuildinfo"));
  expect(bad).toEqual([]);
});

test("the tarball holds what users run: entry points, the serialized hooks' runtime, the CLI, the addon's sources and build script", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { main: string; types: string; bin: Record<string, string>; scripts: Record<string, string> };
  const needed = [
    manifest.main,
    manifest.types,
    ...Object.values(manifest.bin),
    // The path every serialized provider requires (provider/resources/providers.ts): a stable contract.
    "dist/provider/resources/runtime.js",
    "dist/provider/engine/cli/main.js",
    "dist/provider/types.generated.d.ts",
    "scripts/build-native.js",
    "native/gcm.c",
    "native/ring/Cargo.toml",
    "native/ring/Cargo.lock",
    "native/ring/src/lib.rs",
    "schema.json",
    "README.md",
    "package.json",
  ].map((f) => f.replace(/^\.\//, ""));
  expect(needed.filter((f) => !files.includes(f))).toEqual([]);
  expect(manifest.scripts.install).toBe("node scripts/build-native.js");
});

test("every JavaScript file under dist/provider in the tarball is built from a source in provider/ (no stale leftovers)", () => {
  const stale = files
    .filter((f) => f.startsWith("dist/provider/") && f.endsWith(".js"))
    .filter((f) => !fs.existsSync(path.join(ROOT, f.slice("dist/".length).replace(/\.js$/, ".ts"))));
  expect(stale).toEqual([]);
});

test("the tarball stays small: under 256 kB packed, under 1 MB unpacked", () => {
  expect(pack.size).toBeLessThan(256_000);
  expect(pack.unpackedSize).toBeLessThan(1_000_000);
});

test("@pulumi/pulumi is a 3.x range a program's own copy satisfies (no nested second copy), not one pinned version", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  expect(manifest.dependencies["@pulumi/pulumi"]).toMatch(/^\^3\.\d+\.\d+$/);
});
