/**
 * D5 (issue 12): key material in a process that serves I/O. Proven on real child processes:
 * `encdisk serve` (in a child node) is not dumpable and has a core limit of 0 once it used a
 * key; after the last client of an export left (and the grace period), a scan of the child's
 * whole memory (/proc/<pid>/mem) finds none of that export's keys — while the key of an export
 * still in use is found (the scan's positive control); a hardened process that aborts under
 * `ulimit -c unlimited` writes no core file; ENCDISK_KMS_ROOT_KEY leaves the environment.
 */
import Database from "better-sqlite3";
import { spawn, spawnSync, type ChildProcess } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { freePort, nbdsUri, RawClient, run, tmpDir, waitForPort } from "../nbd/helpers";
import { requireTools } from "../support/requireTools";
import * as P from "../../provider/engine/nbd/protocol";

const ZONE = "ap-guangzhou-3";
const DIST = path.resolve(__dirname, "../../dist/provider/engine");
const canScan = fs.existsSync("/proc/self/mem") && process.platform === "linux";

delete process.env.ENCDISK_KMS_ROOT_KEY;
delete process.env.ENCDISK_KMS_ROOT_KEY_FILE;

function unwrap(key: Buffer, blob: Buffer, aad: string): Buffer {
  const d = crypto.createDecipheriv("aes-256-gcm", key, blob.subarray(0, 12));
  d.setAAD(Buffer.from(aad, "utf8"));
  d.setAuthTag(blob.subarray(12, 28));
  return Buffer.concat([d.update(blob.subarray(28)), d.final()]);
}

/** The keys of a directory, recovered independently of the engine from the key file and state.db. */
function keysOf(dir: string, keyFile: string): { root: Buffer; cmk: Buffer; dk: Buffer; psk: Buffer; lineage: (id: string) => Buffer } {
  const root = Buffer.from(fs.readFileSync(keyFile, "utf8").trim(), "hex");
  const db = new Database(path.join(dir, "state.db"), { readonly: true });
  try {
    const k = db.prepare("SELECT k.key_id, k.region, k.wrapped_material, d.wrapped_dk FROM kms_keys k JOIN data_keys d ON d.key_id = k.key_id").get() as { key_id: string; region: string; wrapped_material: Buffer; wrapped_dk: Buffer };
    const cmk = unwrap(root, k.wrapped_material, `encdisk/cmk/v1|${k.region}|${k.key_id}`);
    const dk = unwrap(cmk, k.wrapped_dk, `encdisk/dk/v1|${k.region}|${k.key_id}|cbs-disk-encryption`);
    const meta = (key: string) => (db.prepare("SELECT v FROM meta WHERE k = ?").get(key) as { v: string }).v;
    const psk = unwrap(root, Buffer.from(meta("nbd_psk_secret_wrapped"), "hex"), `encdisk/nbd-psk-secret/v1|${meta("engine_id")}`);
    return { root, cmk, dk, psk, lineage: (id) => Buffer.from(crypto.hkdfSync("sha256", dk, Buffer.from(id), Buffer.from("encdisk/unit-key/v1"), 32)) };
  } finally {
    db.close();
  }
}

/** Each key raw and as lower- and upper-case hex. */
function needles(keys: Record<string, Buffer>): { label: string; bytes: Buffer }[] {
  return Object.entries(keys).flatMap(([label, k]) => [
    { label, bytes: k },
    { label: `${label} (hex)`, bytes: Buffer.from(k.toString("hex")) },
    { label: `${label} (HEX)`, bytes: Buffer.from(k.toString("hex").toUpperCase()) },
  ]);
}

/** Searches every readable private (anonymous or copy-on-write) mapping of a live process for the needles. */
function scanMemory(pid: number, list: { label: string; bytes: Buffer }[]): { found: string[]; bytes: number; where: string[] } {
  const found = new Set<string>();
  const where: string[] = [];
  let bytes = 0;
  const fd = fs.openSync(`/proc/${pid}/mem`, "r");
  const CHUNK = 16 * 1024 * 1024;
  const buf = Buffer.alloc(CHUNK + 128);
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/maps`, "utf8").trim().split("\n")) {
      const [range, perms, , , inode, name = ""] = line.trim().split(/\s+/);
      if (perms[0] !== "r" || perms[3] !== "p" || name.startsWith("[v")) continue;
      if (inode !== "0" && perms[1] !== "w") continue; // read-only file mappings: code and constants
      const [from, to] = range.split("-").map((h) => parseInt(h, 16));
      let carry = 0;
      for (let pos = from; pos < to; ) {
        const want = Math.min(CHUNK, to - pos);
        let n: number;
        try {
          n = fs.readSync(fd, buf, carry, want, pos);
        } catch {
          break; // unmapped meanwhile
        }
        if (n <= 0) break;
        const view = buf.subarray(0, carry + n);
        for (const s of list) {
          const at = view.indexOf(s.bytes);
          if (at >= 0 && !found.has(s.label)) {
            found.add(s.label);
            where.push(`${s.label} at 0x${(pos - carry + at).toString(16)} in ${line.trim()}`);
          }
        }
        bytes += n;
        pos += n;
        carry = Math.min(100, view.length);
        view.copy(buf, 0, view.length - carry);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return { found: [...found].sort(), bytes, where };
}

/** A child node (with --expose-gc) running `script`; `ask(cmd)` sends a line and awaits the reply line. */
function child(script: string, env: NodeJS.ProcessEnv): { proc: ChildProcess; ask: (cmd: string) => Promise<string>; out: string[] } {
  const proc = spawn(process.execPath, ["--expose-gc", "-e", script], { env, stdio: ["pipe", "pipe", "pipe"] });
  const out: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  let partial = "";
  proc.stdout!.on("data", (d: Buffer) => {
    partial += d.toString();
    for (let i = partial.indexOf("\n"); i >= 0; i = partial.indexOf("\n")) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      out.push(line);
      if (line.startsWith("> ")) waiting.shift()?.(line.slice(2));
    }
  });
  proc.stderr!.on("data", (d: Buffer) => out.push(`stderr: ${d}`));
  return {
    proc,
    out,
    ask: (cmd) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no answer to ${cmd}: ${out.join("\n")}`)), 20_000);
        waiting.push((l) => (clearTimeout(t), resolve(l)));
        proc.stdin!.write(`${cmd}\n`);
      }),
  };
}

/** Script prologue: answers "gc" (two full collections, then the hardening state) on stdin. */
const CONTROL = `
const readline = require("readline");
const harden = require(${JSON.stringify(path.join(DIST, "kms/harden"))});
readline.createInterface({ input: process.stdin }).on("line", (l) => {
  if (l === "gc") { global.gc(); global.gc(); const a = harden.hardening(); process.stdout.write("> " + JSON.stringify(a ? a.hardening() : null) + "\\n"); }
  if (l === "env") process.stdout.write("> " + JSON.stringify({ env: process.env.ENCDISK_KMS_ROOT_KEY ?? null }) + "\\n");
  if (l === "exit") process.exit(0);
});
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

(canScan ? requireTools(["nbdcopy"], "D5 memory scan of encdisk serve").describe : describe.skip)("D5: keys in a serving process", () => {
  let work: string;
  let proc: ChildProcess | undefined;
  beforeEach(() => (work = tmpDir("encdisk-d5-")));
  afterEach(() => {
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
    fs.rmSync(work, { recursive: true, force: true });
  });

  test("D5: encdisk serve is not dumpable, has core limit 0, and holds no key of an export whose last client left (the key of an export in use is found)", async () => {
    const dir = path.join(work, "engine");
    const keyFile = path.join(work, "kms-root.key");
    // Set up in another process: this one (the jest worker) stays unhardened for the core-file test.
    const setup = `const e = require(${JSON.stringify(DIST)}).openEngine({ dir: ${JSON.stringify(dir)}, kmsRootKeyFile: ${JSON.stringify(keyFile)} });
e.authorizeKms();
const ins = e.createInstance({ zone: "${ZONE}", instanceType: "S5.MEDIUM4" });
const atts = [0, 1].map(() => {
  const d = e.createDisk({ zone: "${ZONE}", sizeGb: 1, encrypt: true });
  const a = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
  e.write(a.attachmentId, 0, require("crypto").randomBytes(256 * 1024));
  return a;
});
e.close();
process.stdout.write(JSON.stringify(atts));`;
    const made = spawnSync(process.execPath, ["-e", setup], { env: { PATH: process.env.PATH, HOME: work }, encoding: "utf8", timeout: 60_000 });
    expect(made.stderr).toBe("");
    const atts = JSON.parse(made.stdout) as { attachmentId: string; diskId: string; pskFile: string }[];
    const db = new Database(path.join(dir, "state.db"), { readonly: true });
    const lineageOf = (diskId: string) => (db.prepare("SELECT lineage_id FROM disks WHERE disk_id = ?").get(diskId) as { lineage_id: string }).lineage_id;
    const [la, lb] = atts.map((a) => lineageOf(a.diskId));
    db.close();
    const k = keysOf(dir, keyFile);

    const port = await freePort();
    const script = `${CONTROL}
require(${JSON.stringify(path.join(DIST, "cli/serve"))}).serveCommand(["--dir", ${JSON.stringify(dir)}, "--listen", "127.0.0.1:${port}", "--kms-root-key-file", ${JSON.stringify(keyFile)}, "--quiet"]);`;
    const c = child(script, { PATH: process.env.PATH, HOME: work });
    proc = c.proc;
    await waitForPort(port);
    // B stays connected (and read: its key is derived); A is read by a real client, which then leaves.
    const b = await RawClient.open(port, atts[1].attachmentId, Buffer.from(pskLine(atts[1].pskFile), "hex"));
    b.request(P.NBD_CMD_READ, { offset: 0, length: 65536 });
    expect((await b.reply(65536)).error).toBe(0);
    const r = await run("nbdcopy", [nbdsUri(port, atts[0].attachmentId, atts[0].pskFile), path.join(work, "a.raw")]);
    expect(r.code).toBe(0);
    await sleep(1500); // past the 500 ms grace
    const state = JSON.parse(await c.ask("gc")) as { dumpable: number; coreSoft: number; coreHard: number };
    expect(state).toEqual({ dumpable: 0, coreSoft: 0, coreHard: 0 });
    expect(fs.readFileSync(`/proc/${proc.pid}/limits`, "utf8")).toMatch(/Max core file size\s+0\s+0\s/);

    const secrets = needles({ "root key": k.root, CMK: k.cmk, DK: k.dk, "NBD PSK secret": k.psk, "lineage key A": k.lineage(la), "lineage key B": k.lineage(lb) });
    const first = scanMemory(proc.pid as number, secrets);
    expect(first.bytes).toBeGreaterThan(10 * 1024 * 1024);
    // B is still served: its working key is in memory, which proves the scan sees the process's keys.
    expect({ found: first.found, elsewhere: first.where.filter((w) => !w.startsWith("lineage key B")) }).toEqual({ found: ["lineage key B"], elsewhere: [] });

    b.destroy();
    await sleep(1500);
    await c.ask("gc");
    const t0 = Date.now();
    const second = scanMemory(proc.pid as number, secrets);
    console.log(`D5: scanned ${(second.bytes / 2 ** 20).toFixed(0)} MiB of encdisk serve's private memory in ${Date.now() - t0} ms; found: ${JSON.stringify(second.found)} (before the last client left: ${JSON.stringify(first.found)})`);
    expect(second.where).toEqual([]);
    c.proc.kill("SIGTERM");
  }, 60_000);

  test("D5: a process that used a key and then aborts under ulimit -c unlimited writes no core file (a process that used none does)", async () => {
    const dir = path.join(work, "engine");
    const keyFile = path.join(work, "kms-root.key");
    const limits = fs.readFileSync("/proc/self/limits", "utf8");
    if (!/Max core file size\s+\S+\s+unlimited/.test(limits)) {
      console.warn(`D5 core-file test: SKIPPED: this test process cannot raise its core limit (${/Max core file size.*/.exec(limits)?.[0]}; an earlier test in this worker held keys, or the environment limits it)`);
      return;
    }
    const abortAfter = (useKeys: boolean, cwd: string) => {
      fs.mkdirSync(cwd, { recursive: true });
      const script = useKeys
        ? `const e = require(${JSON.stringify(DIST)}).openEngine({ dir: ${JSON.stringify(dir)}, kmsRootKeyFile: ${JSON.stringify(keyFile)} }); e.authorizeKms(); e.createDisk({ zone: "${ZONE}", sizeGb: 1, encrypt: true }); process.abort();`
        : "process.abort();";
      spawnSync("bash", ["-c", `ulimit -c unlimited && exec "$0" -e "$1"`, process.execPath, script], { cwd, env: { PATH: process.env.PATH, HOME: work }, timeout: 60_000 });
      return fs.readdirSync(cwd).filter((f) => /^core/.test(f));
    };
    const control = abortAfter(false, path.join(work, "control"));
    if (control.length === 0) {
      console.warn(`D5 core-file test: SKIPPED: an unhardened abort wrote no core file here (kernel.core_pattern=${fs.readFileSync("/proc/sys/kernel/core_pattern", "utf8").trim()}), so its absence proves nothing`);
      return;
    }
    fs.rmSync(path.join(work, "control"), { recursive: true, force: true });
    expect(abortAfter(true, path.join(work, "keyed"))).toEqual([]);
  }, 120_000);

  test("D5: ENCDISK_KMS_ROOT_KEY is removed from the environment and wiped from /proc/<pid>/environ once read; its hex is nowhere in memory", async () => {
    const dir = path.join(work, "engine");
    const hex = crypto.randomBytes(32).toString("hex");
    const script = `${CONTROL}
const e = require(${JSON.stringify(DIST)}).openEngine({ dir: ${JSON.stringify(dir)} });
e.authorizeKms(); e.createDisk({ zone: "${ZONE}", sizeGb: 1, encrypt: true }); process.stdout.write("> ready\\n");`;
    const c = child(script, { PATH: process.env.PATH, HOME: work, ENCDISK_KMS_ROOT_KEY: hex });
    proc = c.proc;
    await new Promise<void>((resolve) => {
      const t = setInterval(() => c.out.some((l) => l === "> ready") && (clearInterval(t), resolve()), 20);
    });
    expect(JSON.parse(await c.ask("env"))).toEqual({ env: null });
    expect(fs.readFileSync(`/proc/${proc.pid}/environ`).includes(Buffer.from(hex))).toBe(false);
    await c.ask("gc");
    const key = Buffer.from(hex, "hex");
    // The parsed key stays in one Buffer for the process's life (the environment no longer has it); its text form is gone.
    expect(scanMemory(proc.pid as number, needles({ "root key": key }).slice(1)).found).toEqual([]);
    expect(fs.existsSync(path.join(HOME_KEY(work)))).toBe(false); // no key file was made from it
    c.proc.kill("SIGTERM");
  }, 60_000);
});

const HOME_KEY = (home: string) => path.join(home, ".config", "encdisk", "kms-root.key");

function pskLine(file: string): string {
  return fs.readFileSync(file, "utf8").trim().split(":")[1];
}
