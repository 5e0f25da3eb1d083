/**
 * The npm package as a user gets it: `npm pack` of the repository, the tarball installed into
 * an empty project (its install script builds the addon there), and examples/typescript run
 * from that project under the real Pulumi CLI:
 *
 *   1. with no `typescript` in the project: Pulumi's bundled TypeScript 3.8.3 (ts-node);
 *   2. type-checked with `tsc` of TypeScript 4.9.5, 5.0.4 and 5.9.3;
 *   3. with the project's TypeScript 5.9.3;
 *   4. with the lowest @pulumi/pulumi the package supports (3.139.0).
 *
 * Each run is preview, up (the disks named after their resources), a no-change preview and
 * destroy. Needs the npm registry (the project installs @pulumi/pulumi and typescript).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { E2EStack, ROOT, opsByName, run, stepsOfFile } from "./harness";

const LOWEST_PULUMI = "3.139.0";
let tmp: string;
let project: string;
let tarball: { file: string; size: number; unpackedSize: number; entryCount: number };
const { step: timedStep, failed } = stepsOfFile();
/** Steps of this file (each up to 600_000 ms by default). */
const step = (name: string, fn: () => Promise<void>, timeoutMs = 600_000): void => timedStep(name, fn, timeoutMs);
const stacks: E2EStack[] = [];

function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync("npm", [...args, "--no-audit", "--no-fund"], { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 900_000 });
}

function duKb(dir: string): number {
  return Number(execFileSync("du", ["-sk", dir], { encoding: "utf8" }).split("\t")[0]);
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-e2e-package-"));
  // globalSetup built dist/; --ignore-scripts keeps `prepare` from rebuilding it under the other suite.
  const packed = JSON.parse(execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })) as Array<{ filename: string; size: number; unpackedSize: number; entryCount: number }>;
  tarball = { file: path.join(tmp, packed[0].filename), size: packed[0].size, unpackedSize: packed[0].unpackedSize, entryCount: packed[0].entryCount };
  project = path.join(tmp, "app");
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "encdisk-app", private: true, main: "index.ts" }, null, 2));
  // No plain `typescript` yet: Pulumi then uses the TypeScript 3.8.3 it bundles. The aliases give
  // `tsc` binaries of other versions for the type checks without becoming the project's own.
  npm(["install", tarball.file, "@pulumi/pulumi@3.248.0", "@types/node@20.19.43", "ts49@npm:typescript@4.9.5", "ts50@npm:typescript@5.0.4", "ts59@npm:typescript@5.9.3"], project);
  for (const f of ["index.ts", "Pulumi.yaml", "tsconfig.json"]) fs.copyFileSync(path.join(ROOT, "examples", "typescript", f), path.join(project, f));
}, 1_200_000);

afterAll(() => {
  for (const s of stacks) {
    process.stderr.write(`[e2e] ${s.stack} commands:\n${s.timings()}\n`);
    s.cleanup(failed());
  }
  if (tmp && !failed()) fs.rmSync(tmp, { recursive: true, force: true });
  else if (tmp) process.stderr.write(`[e2e] kept ${tmp} for a post-mortem\n`);
});

/** A stack of the installed project: the harness's world, with node_modules the project's own. */
function stackOf(name: string): E2EStack {
  const s = new E2EStack(project, name, "env");
  fs.rmSync(path.join(s.projectDir, "node_modules"));
  fs.symlinkSync(path.join(project, "node_modules"), path.join(s.projectDir, "node_modules"), "dir");
  stacks.push(s);
  return s;
}

/** preview, up, a no-change preview, the names in the engine, destroy. */
async function lifecycle(s: E2EStack): Promise<string> {
  await s.init();
  const p = await s.previewJson();
  expect(opsByName(p)).toEqual({ kms: "create", web: "create", data: "create", "data-on-web": "create", nightly: "create", restored: "create" });
  const up = await s.pulumi(["up", "--yes", "--skip-preview"]);
  const outputs = await s.outputs();
  expect(outputs).toMatchObject({ dataEncrypted: true, restoredEncrypted: true });
  expect(String(outputs.kmsKeyId)).toMatch(/\S/);
  // Default names: each disk, instance and snapshot is named after its Pulumi resource.
  const disks = await s.list<{ diskId: string; name: string }>("disks");
  expect(disks.map((d) => d.name).sort()).toEqual(["data", "restored"]);
  expect((await s.list<{ name: string }>("instances")).map((i) => i.name)).toEqual(["web"]);
  expect((await s.list<{ name: string }>("snapshots")).map((x) => x.name)).toEqual(["nightly"]);
  await s.pulumi(["preview", "--expect-no-changes"]);
  await s.pulumi(["destroy", "--yes", "--skip-preview"]);
  expect(await s.list("disks")).toEqual([]);
  return up.out;
}

step("the tarball is small and the installed package holds no build debris", async () => {
  const installed = path.join(project, "node_modules", "pulumi-encdisk");
  const kb = duKb(installed);
  process.stderr.write(`[e2e] tarball ${tarball.size} B (${tarball.entryCount} files, ${tarball.unpackedSize} B unpacked); installed node_modules/pulumi-encdisk ${kb} KiB\n`);
  expect(tarball.size).toBeLessThan(256_000);
  expect(fs.existsSync(path.join(installed, "native", "ring", "target"))).toBe(false);
  expect(fs.readdirSync(path.join(installed, "native", "build")).filter((f) => !f.endsWith(".node"))).toEqual([]);
  // The addon over Node's OpenSSL needs only a C compiler; ring's needs cargo too.
  expect(fs.existsSync(path.join(installed, "native", "build", "gcm-openssl.node"))).toBe(true);
  expect(kb).toBeLessThan(4096);
  // One copy of @pulumi/pulumi: the project's (the package's range accepts it).
  expect(fs.existsSync(path.join(installed, "node_modules", "@pulumi", "pulumi"))).toBe(false);
});

step("TypeScript 3.8.3 (Pulumi's bundled, the project has no typescript): preview, up, no-change preview, destroy of examples/typescript", async () => {
  expect(fs.existsSync(path.join(project, "node_modules", "typescript"))).toBe(false);
  const s = stackOf("ts38");
  await lifecycle(s);
  // It type-checks (not only transpiles): an Output used as a number fails the preview.
  fs.appendFileSync(path.join(s.projectDir, "index.ts"), "\nexport const wrong: number = data.sizeGb;\n");
  const bad = await s.pulumi(["preview"], { allowFail: true });
  expect(bad.code).not.toBe(0);
  expect(bad.out).toMatch(/TS2322/);
});

step("tsc of TypeScript 4.9.5, 5.0.4 and 5.9.3 type-checks examples/typescript against the installed declarations", async () => {
  for (const alias of ["ts49", "ts50", "ts59"]) {
    const tsc = path.join(project, "node_modules", alias, "bin", "tsc");
    const r = await run(process.execPath, [tsc, "-p", ".", "--noEmit"], { cwd: project, env: process.env });
    expect(`${alias}: rc=${r.code} ${r.out}`).toBe(`${alias}: rc=0 `);
  }
});

step("TypeScript 5.9.3 (the project's own): preview, up, no-change preview, destroy of examples/typescript", async () => {
  npm(["install", "typescript@5.9.3"], project);
  const s = stackOf("ts59");
  await lifecycle(s);
});

step(`the lowest supported @pulumi/pulumi (${LOWEST_PULUMI}): preview, up, no-change preview, destroy of examples/typescript`, async () => {
  npm(["install", `@pulumi/pulumi@${LOWEST_PULUMI}`], project);
  const version = (JSON.parse(fs.readFileSync(path.join(project, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")) as { version: string }).version;
  expect(version).toBe(LOWEST_PULUMI);
  const s = stackOf("lowest");
  await lifecycle(s);
});
