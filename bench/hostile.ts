/**
 * The three figures of issue 12 (D1, D3, D8), measured against a real `encdisk serve` process
 * (bin/encdisk.js, default limits) on loopback:
 *
 *   node dist/bench/hostile.js            (after `npm run build`)
 *
 * - D8: the server's RSS before and while ENCDISK_BENCH_STALLED (default 40) authenticated
 *   clients each announce a 32 MiB WRITE, send what the server will take of its payload, and
 *   stall; then a real client (qemu-io) writes and reads 1 MiB.
 * - D1: a whole-disk TRIM (`qemu-io -c "discard 0 1T"`) of a 1 TiB encrypted disk holding
 *   256 MiB in 256 places.
 * - D3: latency of 64 KiB reads of one export while another process holds the SQLite write
 *   lock for 3 s and a write to another export waits for it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { openEngine } from "../provider/engine";
import type { Attachment } from "../provider/engine";
import { freePort, P, qemuArgs, qemuPskDir, RawClient, run, tmpDir, waitForPort } from "../test/nbd/helpers";

const MiB = 1024 * 1024;
const ZONE = "ap-guangzhou-3";
const STALLED = Number(process.env.ENCDISK_BENCH_STALLED || 40);
const root = path.join(__dirname, "..", "..");

const rssMib = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
const keyOf = (a: Attachment): Buffer => Buffer.from(fs.readFileSync(a.pskFile, "utf8").trim().split(":")[1], "hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const work = tmpDir("bench-hostile-");
  const dir = path.join(work, "engine");
  const keyFile = path.join(work, "kms-root.key");
  fs.writeFileSync(keyFile, crypto.randomBytes(32).toString("hex"), { mode: 0o600 });
  const port = await freePort();
  const mgmt = openEngine({ dir, kmsRootKeyFile: keyFile, nbdAddress: `127.0.0.1:${port}` });
  mgmt.authorizeKms();
  const ins = mgmt.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const big = mgmt.attachDisk({ diskId: mgmt.createDisk({ zone: ZONE, sizeGb: 1024, encrypt: true }).diskId, instanceId: ins.instanceId });
  const small = mgmt.attachDisk({ diskId: mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true }).diskId, instanceId: ins.instanceId });
  const chunk = crypto.randomBytes(MiB);
  for (let k = 0; k < 256; k++) mgmt.write(big.attachmentId, Math.floor(((big.capacityBytes - MiB) / 256) * k / 65536) * 65536, chunk);
  mgmt.write(small.attachmentId, 0, crypto.randomBytes(MiB));

  const server: ChildProcess = spawn(process.execPath, [path.join(root, "bin", "encdisk.js"), "serve", "--dir", dir, "--listen", `127.0.0.1:${port}`, "--kms-root-key-file", keyFile, ], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  server.stdout?.on("data", (b: Buffer) => (out += b.toString()));
  try {
    await waitForPort(port);
    const pid = server.pid as number;
    const q = (a: Attachment) => qemuArgs(port, a.attachmentId, qemuPskDir(a.pskFile, path.join(work, `q-${a.attachmentId}`)));
    const io = (a: Attachment, cmds: string[]) => run("qemu-io", [...q(a).object, "--image-opts", q(a).image, ...cmds.flatMap((c) => ["-c", c])]);

    // D1
    const t0 = Date.now();
    // qemu-io takes less than 2 GiB per discard command (and NBD's 32-bit length 4 GiB per request): 1 GiB each.
    const G2 = 1024 * MiB;
    const trim = await io(big, Array.from({ length: big.capacityBytes / G2 }, (_, k) => `discard ${k * G2} ${G2}`));
    const trimMs = Date.now() - t0;
    const left = mgmt.read(big.attachmentId, Math.floor(((big.capacityBytes - MiB) / 256) * 100 / 65536) * 65536, MiB).equals(Buffer.alloc(MiB));
    console.log(`D1: whole-disk TRIM of a 1 TiB encrypted disk holding 256 MiB (4096 units), as one qemu-io run of ${big.capacityBytes / G2} "discard OFF 1G" commands: exit ${trim.code}, ${trimMs} ms wall (incl. qemu-io start and TLS connect), data gone: ${left}${trim.code ? `; ${(trim.stdout + trim.stderr).slice(0, 500)}` : ""}`);

    // D8
    const warm = await io(small, ["read 0 1M"]);
    if (warm.code !== 0) throw new Error(`warm-up read failed: ${warm.stderr}`);
    const before = rssMib(pid);
    const clients: RawClient[] = [];
    while (clients.length < STALLED) clients.push(...(await Promise.all(Array.from({ length: Math.min(8, STALLED - clients.length) }, () => RawClient.open(port, small.attachmentId, keyOf(small))))));
    const h = Buffer.alloc(28);
    h.writeUInt32BE(P.REQUEST_MAGIC, 0);
    h.writeUInt16BE(P.NBD_CMD_WRITE, 6);
    h.writeUInt32BE(32 * MiB, 24);
    const piece = Buffer.alloc(MiB, 0x5a);
    // Each sends its header, then payload while the server takes it (31 MiB at most), then stalls.
    for (const c of clients) {
      c.send(h);
      void (async () => {
        const s = (c as unknown as { stream: NodeJS.WritableStream & { writableNeedDrain: boolean } }).stream;
        for (let sent = 0; sent < 31 * MiB && !c.closed; sent += MiB) {
          if (!s.write(piece)) await Promise.race([new Promise((r) => s.once("drain", r)), c.closedPromise]);
        }
      })();
    }
    let peak = before;
    const end = Date.now() + 8000;
    while (Date.now() < end) {
      peak = Math.max(peak, rssMib(pid));
      await sleep(100);
    }
    const t1 = Date.now();
    const real = await io(small, ["write -P 0x33 4M 1M", "read -P 0x33 4M 1M"]);
    const realMs = Date.now() - t1;
    peak = Math.max(peak, rssMib(pid));
    const evicted = (out.match(/buffer budget/g) ?? []).length;
    console.log(`D8: server RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB with ${STALLED} stalled 32 MiB WRITEs (budget 256 MiB); ${clients.filter((c) => c.closed).length} of them closed by the server (${evicted} under budget pressure); a real qemu-io write+read of 1 MiB meanwhile: exit ${real.code} in ${realMs} ms`);
    for (const c of clients) c.destroy();

    // D3
    const cb = await RawClient.open(port, small.attachmentId, keyOf(small));
    const ca = await RawClient.open(port, big.attachmentId, keyOf(big));
    const lat = async (n: number): Promise<number[]> => {
      const l: number[] = [];
      for (let i = 0; i < n; i++) {
        const s0 = process.hrtime.bigint();
        cb.request(P.NBD_CMD_READ, { handle: BigInt(i), offset: (i % 16) * 65536, length: 65536 });
        await cb.reply(65536);
        l.push(Number(process.hrtime.bigint() - s0) / 1e6);
      }
      return l.sort((x, y) => x - y);
    };
    const free = await lat(50);
    const code = `const D=require("better-sqlite3");const d=new D(${JSON.stringify(path.join(dir, "state.db"))});d.exec("BEGIN IMMEDIATE");process.stdout.write("locked\\n");Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,3000);d.exec("COMMIT");`;
    const holder = spawn(process.execPath, ["-e", code], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((r) => holder.stdout?.on("data", () => r()));
    const w0 = Date.now();
    ca.request(P.NBD_CMD_WRITE, { handle: 9n, offset: 0, data: crypto.randomBytes(65536) });
    const wrote = ca.reply().then(() => Date.now() - w0);
    const held = await lat(50);
    const stillHeld = holder.exitCode === null;
    const writeMs = await wrote;
    const pct = (l: number[], p: number) => l[Math.min(l.length - 1, Math.floor(l.length * p))].toFixed(2);
    console.log(`D3: 64 KiB reads of an unrelated export: median ${pct(free, 0.5)} ms / p95 ${pct(free, 0.95)} ms without the lock; median ${pct(held, 0.5)} ms / p95 ${pct(held, 0.95)} ms / max ${pct(held, 1)} ms while another process holds the write lock for 3000 ms (all 50 done while held: ${stillHeld}); the waiting write completed after ${writeMs} ms`);
    ca.destroy();
    cb.destroy();
  } catch (e) {
    console.error(out.split("\n").slice(-30).join("\n"));
    throw e;
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    mgmt.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
