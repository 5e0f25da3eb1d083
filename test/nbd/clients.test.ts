/**
 * Attachments as real block devices (W2, L6): unmodified NBD clients (nbdinfo, nbdcopy,
 * qemu-img, qemu-io from Debian's libnbd-bin and qemu-utils) read and write an encrypted
 * disk through `encdisk serve`'s NBD server, over TLS-PSK only.
 *
 * The server runs in this process on its own engine handle (as `encdisk serve` does), while
 * the test manages disks through a second handle on the same directory (as the CLI/provider
 * does from another process).
 */
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { openEngine } from "../../provider/engine";
import type { Attachment, Disk, Engine, Instance } from "../../provider/engine";
import { EngineBackend } from "../../provider/engine/nbd/engine-backend";
import { NbdServer } from "../../provider/engine/nbd/server";
import { clientAccess } from "../../provider/engine/nbd/uri";
import { requireTools } from "../support/requireTools";
import { freePort, nbdsUri, P, qemuArgs, qemuPskDir, RawClient, run, tmpDir, waitFor as waitUntil } from "./helpers";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const ZONE = "ap-guangzhou-3";
/** Size of the random image written with qemu-img and read back with nbdcopy (issue 5 asks 256 MiB). */
const IMAGE_MIB = Number(process.env.ENCDISK_NBD_TEST_MIB || 256);
/** Where the qemu-io pattern tests write, in MiB: past the image. */
const QB = IMAGE_MIB + 6;
// Skipped (loudly, and failing under CI=true) when a client is missing: npm run setup installs them.
const describeTools = requireTools(["nbdinfo", "nbdcopy", "qemu-img", "qemu-io"], "real-client NBD tests").describe;

/** Run a command and compare its stdout with `expected` followed by zeros up to `total` bytes. */
function streamCompare(cmd: string, args: string[], expected: Buffer, total: number): Promise<{ code: number | null; stderr: string; bytes: number; firstMismatch: number }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let bytes = 0;
    let firstMismatch = -1;
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      if (firstMismatch < 0) {
        for (let i = 0; i < chunk.length; ) {
          const at = bytes + i;
          const n = at < expected.length ? Math.min(chunk.length - i, expected.length - at) : chunk.length - i;
          const want = at < expected.length ? expected.subarray(at, at + n) : ZEROS.subarray(0, Math.min(n, ZEROS.length));
          const m = Math.min(n, want.length);
          const got = chunk.subarray(i, i + m);
          if (!got.equals(want)) {
            let k = 0;
            while (got[k] === want[k]) k++;
            firstMismatch = at + k;
            break;
          }
          i += m;
        }
      }
      bytes += chunk.length;
    });
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.once("close", (code) => resolve({ code, stderr, bytes, firstMismatch: bytes === total ? firstMismatch : firstMismatch < 0 ? Math.min(bytes, total) : firstMismatch }));
  });
}
const ZEROS = Buffer.alloc(4 * MiB);

describeTools("W2: encrypted attachments over NBD+TLS with real clients", () => {
  let work: string;
  let dir: string;
  let mgmt: Engine;
  let server: NbdServer;
  let port: number;
  let instance: Instance;
  let disk: Disk;
  let att: Attachment;
  let image: Buffer;
  const logs: string[] = [];

  // The engine's endpoint names this server's port; clientAccess turns it into the URI libnbd wants.
  const uri = (a: Attachment = att, pskFile = a.pskFile): string => clientAccess({ ...a, pskFile }).libnbdUri;
  const qemu = (a: Attachment = att): { object: string[]; image: string } => qemuArgs(port, a.attachmentId, qemuPskDir(a.pskFile, path.join(work, `qemu-${a.attachmentId}`)));
  const waitFor = (cond: () => boolean): Promise<void> => waitUntil(cond, 3000);

  beforeAll(async () => {
    work = tmpDir("nbd-clients-");
    dir = path.join(work, "engine");
    const rootKey = crypto.randomBytes(32);
    port = await freePort();
    mgmt = openEngine({ dir, kmsRootKey: rootKey, nbdAddress: `127.0.0.1:${port}` });
    mgmt.authorizeKms();
    instance = mgmt.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    disk = mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true, name: "nbd-test" });
    att = mgmt.attachDisk({ diskId: disk.diskId, instanceId: instance.instanceId });
    server = new NbdServer({ backend: new EngineBackend(openEngine({ dir, kmsRootKey: rootKey })), port, pollIntervalMs: 100, log: (l) => logs.push(l) });
    expect((await server.listen()).port).toBe(port);
    image = crypto.randomBytes(IMAGE_MIB * MiB);
    fs.writeFileSync(path.join(work, "image.raw"), image);
  });

  afterAll(async () => {
    await server?.close();
    mgmt?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("(the stream comparison used below detects a difference)", async () => {
    const file = path.join(work, "image.raw");
    expect(await streamCompare("cat", [file], image, image.length)).toMatchObject({ code: 0, firstMismatch: -1 });
    const other = Buffer.from(image);
    other[12345678] ^= 1;
    expect(await streamCompare("cat", [file], other, image.length)).toMatchObject({ firstMismatch: 12345678 });
    expect((await streamCompare("cat", [file], image, image.length + 10)).firstMismatch).toBe(image.length);
  });

  test("the attachment names its endpoint and a 0600 psktool key file", () => {
    expect(att.endpoint).toBe(`nbds://${att.attachmentId}@127.0.0.1:${port}/${att.attachmentId}`);
    expect(att.pskIdentity).toBe(att.attachmentId);
    const st = fs.statSync(att.pskFile);
    expect(st.mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(att.pskFile, "utf8")).toMatch(new RegExp(`^${att.attachmentId}:[0-9a-f]{64}\\n?$`));
  });

  test("L6: nbdinfo sees the attachment's capacity", async () => {
    const r = await run("nbdinfo", ["--size", uri()]);
    expect(r.stderr).toBe("");
    expect(Number(r.stdout.trim())).toBe(att.capacityBytes);
    expect(att.capacityBytes).toBe(1 * GiB);
    const full = await run("nbdinfo", [uri()]);
    expect(full.code).toBe(0);
    expect(full.stdout).toContain("with TLS");
    expect(full.stdout).toMatch(/can_flush: true/);
  });

  test(`qemu-img convert writes a ${IMAGE_MIB} MiB random image into the export; nbdcopy reads it back identical`, async () => {
    const q = qemu();
    const w = await run("qemu-img", ["convert", "-n", "-f", "raw", ...q.object, "--target-image-opts", path.join(work, "image.raw"), q.image]);
    expect(w.stderr).toBe("");
    expect(w.code).toBe(0);
    // nbdcopy streams the whole export to stdout; compare as it arrives (no 1 GiB file or buffer).
    const r = await streamCompare("nbdcopy", [uri(), "-"], image, att.capacityBytes);
    expect(r.stderr).toBe("");
    expect(r).toMatchObject({ code: 0, bytes: att.capacityBytes, firstMismatch: -1 });
    // And the engine's own read path agrees.
    expect(mgmt.read(att.attachmentId, 5 * MiB + 7, 4096).equals(image.subarray(5 * MiB + 7, 5 * MiB + 7 + 4096))).toBe(true);
  });

  test("nbdcopy writes, qemu-img compare agrees", async () => {
    const src = path.join(work, "small.raw");
    const data = crypto.randomBytes(8 * MiB);
    fs.writeFileSync(src, data);
    const w = await run("nbdcopy", [src, uri()]);
    expect(w.code).toBe(0);
    const q = qemu();
    // Compare the first 8 MiB of the export with the file (qemu-img compare takes the image-opts of a size-limited raw view).
    const cmp = await run("qemu-img", ["compare", ...q.object, "--image-opts", `driver=raw,offset=0,size=${8 * MiB},file.${q.image.split(",").join(",file.")}`, `driver=raw,file.driver=file,file.filename=${src}`]);
    expect(cmp.stdout + cmp.stderr).toMatch(/Images are identical/);
    image.set(data, 0);
  });

  test("qemu-io: pattern writes and reads, discard, write-zeroes, flush", async () => {
    const q = qemu();
    const r = await run("qemu-io", [...q.object, "--image-opts", q.image,
      "-c", `write -P 0xab ${QB}M 1M`,
      "-c", `read -P 0xab ${QB}M 1M`,
      "-c", `write -P 0xcd ${QB + 2}M 64k`,
      "-c", `discard ${QB + 2}M 64k`,
      "-c", `read -P 0 ${QB + 2}M 64k`,
      "-c", `write -P 0xef ${QB + 4}M 192k`,
      "-c", `write -z ${QB + 4}M 128k`,
      "-c", `read -P 0 ${QB + 4}M 128k`,
      "-c", `read -P 0xef ${(QB + 4) * MiB + 128 * 1024} 64k`,
      "-c", "write -P 0x5a 1073741823 1",
      "-c", "read -P 0x5a 1073741823 1",
      "-c", "flush"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/Pattern verification failed|error/i);
    expect(mgmt.read(att.attachmentId, QB * MiB, MiB).equals(Buffer.alloc(MiB, 0xab))).toBe(true);
  });

  test("L6: a write past the capacity fails cleanly and the server keeps serving", async () => {
    const q = qemu();
    const r = await run("qemu-io", [...q.object, "--image-opts", q.image, "-c", "write -P 1 1073741824 512"]);
    expect(r.stdout + r.stderr).toMatch(/error|Input\/output|out of range|beyond|No space|Invalid argument/i);
    const ok = await run("nbdinfo", ["--size", uri()]);
    expect(ok.code).toBe(0);
  });

  test("L6: growing an attached encrypted disk does not change the export until detach + attach", async () => {
    const d5 = mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true, name: "grow" });
    let a5 = mgmt.attachDisk({ diskId: d5.diskId, instanceId: instance.instanceId });
    try {
      await waitFor(() => server.findExport(a5.attachmentId) !== undefined);
      mgmt.resizeDisk(d5.diskId, 2);
      await new Promise((r) => setTimeout(r, 300));
      expect(mgmt.getAttachment(a5.attachmentId).reattachRequired).toBe(true);
      expect(Number((await run("nbdinfo", ["--size", uri(a5)])).stdout.trim())).toBe(1 * GiB);
      mgmt.detachDisk(a5.attachmentId);
      a5 = mgmt.attachDisk({ diskId: d5.diskId, instanceId: instance.instanceId });
      await waitFor(() => server.findExport(a5.attachmentId) !== undefined);
      expect(Number((await run("nbdinfo", ["--size", uri(a5)])).stdout.trim())).toBe(2 * GiB);
    } finally {
      mgmt.detachDisk(a5.attachmentId);
      mgmt.deleteDisk(d5.diskId);
    }
  });

  test("L6: a plain disk grows online; new connections see the new size, open ones keep theirs", async () => {
    const d6 = mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: false, name: "plain-grow" });
    const a6 = mgmt.attachDisk({ diskId: d6.diskId, instanceId: instance.instanceId });
    try {
      await waitFor(() => server.findExport(a6.attachmentId) !== undefined);
      const key = Buffer.from(fs.readFileSync(a6.pskFile, "utf8").trim().split(":")[1], "hex");
      const { c } = await RawClient.hello(port);
      await c.starttls(a6.attachmentId, key);
      const go = await c.goOrInfo(P.NBD_OPT_GO, a6.attachmentId);
      expect(go[go.length - 1].type).toBe(P.NBD_REP_ACK);
      mgmt.resizeDisk(d6.diskId, 2);
      await waitFor(() => server.findExport(a6.attachmentId)?.size === 2 * GiB);
      expect(Number((await run("nbdinfo", ["--size", uri(a6)])).stdout.trim())).toBe(2 * GiB);
      // The open connection negotiated 1 GiB: a read past it is refused, one inside works.
      c.request(P.NBD_CMD_READ, { handle: 1n, offset: GiB, length: 512 });
      expect((await c.reply()).error).toBe(P.NBD_EINVAL);
      c.request(P.NBD_CMD_READ, { handle: 2n, offset: GiB - 512, length: 512 });
      expect((await c.reply(512)).error).toBe(0);
      c.destroy();
    } finally {
      mgmt.detachDisk(a6.attachmentId);
      mgmt.deleteDisk(d6.diskId);
    }
  });

  test.each([
    ["TLS 1.3 (GnuTLS default)", "NORMAL", "TLSv1.3"],
    ["TLS 1.2 PSK", "NORMAL:-VERS-TLS1.3:-ECDHE-PSK:-DHE-PSK:+PSK", "TLSv1.2"],
    ["TLS 1.2 DHE-PSK", "NORMAL:-VERS-TLS1.3:-ECDHE-PSK:+DHE-PSK:-PSK", "TLSv1.2"],
    ["TLS 1.2 ECDHE-PSK", "NORMAL:-VERS-TLS1.3:+ECDHE-PSK:-DHE-PSK:-PSK", "TLSv1.2"],
  ])("W2: a GnuTLS client (qemu) negotiates %s", async (_what, priority, version) => {
    const q = qemu();
    const before = logs.length;
    const r = await run("qemu-img", ["info", "--object", `${q.object[1]},priority=${priority}`, "--image-opts", q.image]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`virtual size: 1 GiB (${GiB} bytes)`);
    expect(logs.slice(before).some((l) => l.includes(`TLS ${version} `) && l.includes(`as ${att.attachmentId}`))).toBe(true);
  });

  test("W2: a client without TLS is refused", async () => {
    const r = await run("nbdinfo", [`nbd://127.0.0.1:${port}/${att.attachmentId}`]);
    expect(r.code).not.toBe(0);
    const q = qemu();
    const qi = await run("qemu-img", ["info", "--image-opts", q.image.replace(",tls-creds=tls0", "")]);
    expect(qi.code).not.toBe(0);
    expect(logs.some((l) => /before TLS|plaintext/.test(l))).toBe(true);
  });

  test("W2: a wrong PSK is refused", async () => {
    const bad = path.join(work, "bad.psk");
    fs.writeFileSync(bad, `${att.attachmentId}:${crypto.randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    const r = await run("nbdinfo", [uri(att, bad)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/TLS|handshake|gnutls/i);
    const badDir = path.join(work, "qemu-bad");
    qemuPskDir(bad, badDir);
    const q = qemuArgs(port, att.attachmentId, badDir);
    const qi = await run("qemu-img", ["info", ...q.object, "--image-opts", q.image]);
    expect(qi.code).not.toBe(0);
  });

  test("W2: one attachment's key does not open another attachment's export", async () => {
    const d2 = mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true, name: "other" });
    const a2 = mgmt.attachDisk({ diskId: d2.diskId, instanceId: instance.instanceId });
    try {
      await waitFor(() => server.findExport(a2.attachmentId) !== undefined);
      const r = await run("nbdinfo", [nbdsUri(port, a2.attachmentId, att.pskFile, att.attachmentId)]);
      expect(r.code).not.toBe(0);
      const ok = await run("nbdinfo", ["--size", uri(a2)]);
      expect(ok.code).toBe(0);
    } finally {
      mgmt.detachDisk(a2.attachmentId);
      mgmt.deleteDisk(d2.diskId);
    }
  });

  test("W2: a snapshot taken after NBD writes holds them, and a disk made from it reads them back", async () => {
    const snap = mgmt.createSnapshot({ diskId: disk.diskId, name: "after-nbd-writes" });
    expect(snap.encrypted).toBe(true);
    const restored = mgmt.createDisk({ zone: ZONE, sizeGb: 1, snapshotId: snap.snapshotId, name: "from-snap" });
    expect(restored.encrypted).toBe(true);
    const a3 = mgmt.attachDisk({ diskId: restored.diskId, instanceId: instance.instanceId });
    try {
      await waitFor(() => server.findExport(a3.attachmentId) !== undefined);
      // Read back the written head through a size-limited raw view (the rest of the 1 GiB is holes).
      const back = path.join(work, "restored.raw");
      const q = qemu(a3);
      const r = await run("qemu-img", ["convert", ...q.object, "--image-opts", `driver=raw,offset=0,size=${(QB + 2) * MiB},file.${q.image.split(",").join(",file.")}`, "-O", "raw", back]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const got = fs.readFileSync(back);
      expect(got.length).toBe((QB + 2) * MiB);
      expect(got.subarray(0, image.length).equals(image)).toBe(true);
      expect(got.subarray(QB * MiB, (QB + 1) * MiB).equals(Buffer.alloc(MiB, 0xab))).toBe(true);
      fs.rmSync(back);
    } finally {
      mgmt.detachDisk(a3.attachmentId);
      mgmt.deleteDisk(restored.diskId);
    }
  });

  test("W2: no file under the engine directory holds the plaintext written over NBD", () => {
    const needles = [image.subarray(0, 64), image.subarray(33 * MiB + 12345, 33 * MiB + 12345 + 64), image.subarray(image.length - 64), Buffer.alloc(4096, 0xab)];
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) files.push(p);
      }
    };
    walk(dir);
    expect(files.length).toBeGreaterThan(1);
    let bytes = 0;
    for (const f of files) {
      const content = fs.readFileSync(f);
      bytes += content.length;
      for (const n of needles) expect({ file: f, found: content.indexOf(n) >= 0 }).toEqual({ file: f, found: false });
    }
    expect(bytes).toBeGreaterThan(image.length); // the ciphertext is there, just not readable
  });

  test("detach closes the export and its open connections; the key file is gone", async () => {
    const d4 = mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true, name: "to-detach" });
    const a4 = mgmt.attachDisk({ diskId: d4.diskId, instanceId: instance.instanceId });
    await waitFor(() => server.findExport(a4.attachmentId) !== undefined);
    const key = Buffer.from(fs.readFileSync(a4.pskFile, "utf8").trim().split(":")[1], "hex");
    const keyCopy = path.join(work, "detached.psk");
    fs.copyFileSync(a4.pskFile, keyCopy);
    const { c } = await RawClient.hello(port);
    await c.starttls(a4.attachmentId, key);
    const go = await c.goOrInfo(P.NBD_OPT_GO, a4.attachmentId);
    expect(go[go.length - 1].type).toBe(P.NBD_REP_ACK);
    mgmt.detachDisk(a4.attachmentId);
    expect(fs.existsSync(a4.pskFile)).toBe(false);
    // A write racing the detach: refused with ESHUTDOWN (nothing written) unless the server already hung up.
    c.request(P.NBD_CMD_WRITE, { handle: 9n, offset: 0, data: Buffer.alloc(4096, 0x42) });
    const raced = await Promise.race([c.reply().then((r) => r.error, () => "closed" as const), c.closedPromise.then(() => "closed" as const)]);
    expect([P.NBD_ESHUTDOWN, "closed"]).toContain(raced);
    expect(await c.closesWithin(3000)).toBe(true);
    expect(logs.some((l) => l.includes(`export ${a4.attachmentId} removed`))).toBe(true);
    const r = await run("nbdinfo", [nbdsUri(port, a4.attachmentId, keyCopy)]);
    expect(r.code).not.toBe(0);
    mgmt.deleteDisk(d4.diskId);
  });
});
