/**
 * `encdisk serve`: flags, following attachments of an engine directory, clean shutdown on
 * SIGTERM/SIGINT (W2: every attachment is served only over TLS-PSK).
 */
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { openEngine } from "../../provider/engine";
import { parseListen, parseServeFlags, serveCommand } from "../../provider/engine/cli/serve";
import { requireTools } from "../support/requireTools";
import { freePort, nbdsUri, run, tmpDir, waitForPort } from "./helpers";

const ZONE = "ap-guangzhou-3";

describe("encdisk serve flags", () => {
  test("--listen, --dir, --poll-ms and the environment defaults", () => {
    expect(parseListen("127.0.0.1:10809")).toEqual({ host: "127.0.0.1", port: 10809 });
    expect(parseListen("[::1]:9000")).toEqual({ host: "::1", port: 9000 });
    expect(parseListen(":0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(() => parseListen("nope")).toThrow(/HOST:PORT/);
    expect(() => parseListen("h:70000")).toThrow(/range/);
    const f = parseServeFlags(["--dir", "/tmp/x", "--listen=0.0.0.0:1234", "--poll-ms", "100"], {});
    expect(f).toMatchObject({ dir: "/tmp/x", host: "0.0.0.0", port: 1234, pollMs: 100 });
    expect(parseServeFlags([], { ENCDISK_NBD_ADDRESS: "127.0.0.2:5555", ENCDISK_DIR: "/tmp/y" })).toMatchObject({ dir: "/tmp/y", host: "127.0.0.2", port: 5555, pollMs: 250 });
    expect(parseServeFlags([], {})).toMatchObject({ host: "127.0.0.1", port: 10809 });
    expect(() => parseServeFlags(["--bogus"], {})).toThrow(/unknown flag/);
    expect(() => parseServeFlags(["--poll-ms", "0"], {})).toThrow(/poll-ms/);
    expect(() => parseServeFlags(["--dir"], {})).toThrow(/needs a value/);
  });

  test("bad flags exit 2 with the usage", async () => {
    const err = jest.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await serveCommand(["--listen", "nope"])).toBe(2);
      expect(err.mock.calls.map((c) => String(c[0])).join("")).toMatch(/usage: encdisk serve/);
    } finally {
      err.mockRestore();
    }
  });
});

requireTools(["nbdinfo"], "encdisk serve with nbdinfo").describe("encdisk serve follows the engine directory", () => {
  let work: string;
  let dir: string;
  let rootKeyFile: string;

  beforeAll(() => {
    work = tmpDir("nbd-serve-");
    dir = path.join(work, "engine");
    rootKeyFile = path.join(work, "kms-root.key");
    fs.writeFileSync(rootKeyFile, crypto.randomBytes(32).toString("hex"), { mode: 0o600 });
  });

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  function setup(): { mgmt: ReturnType<typeof openEngine>; instanceId: string } {
    const mgmt = openEngine({ dir, kmsRootKeyFile: rootKeyFile });
    mgmt.authorizeKms();
    const ins = mgmt.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    return { mgmt, instanceId: ins.instanceId };
  }

  test("in process: serves attachments made later by another engine handle, drops detached ones, stops cleanly", async () => {
    const { mgmt, instanceId } = setup();
    const port = await freePort();
    const out = jest.spyOn(process.stdout, "write").mockImplementation(() => true);
    let done: Promise<number> | undefined;
    try {
      let stop: () => void = () => undefined;
      const stopped = new Promise<void>((r) => (stop = r));
      done = serveCommand(["--dir", dir, "--listen", `127.0.0.1:${port}`, "--poll-ms", "50", "--kms-root-key-file", rootKeyFile, "--quiet"], { stop: stopped });
      await waitForPort(port);
      const d = mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true });
      const a = mgmt.attachDisk({ diskId: d.diskId, instanceId });
      let size = "";
      for (let i = 0; i < 40 && !size; i++) {
        const r = await run("nbdinfo", ["--size", nbdsUri(port, a.attachmentId, a.pskFile)]);
        if (r.code === 0) size = r.stdout.trim();
        else await new Promise((res) => setTimeout(res, 50));
      }
      expect(Number(size)).toBe(a.capacityBytes);
      const keyCopy = path.join(work, "copy.psk");
      fs.copyFileSync(a.pskFile, keyCopy);
      mgmt.detachDisk(a.attachmentId);
      await new Promise((res) => setTimeout(res, 200));
      expect((await run("nbdinfo", ["--size", nbdsUri(port, a.attachmentId, keyCopy)])).code).not.toBe(0);
      stop();
      expect(await done).toBe(0);
      expect(out.mock.calls.map((c) => String(c[0])).join("")).toMatch(/listening on 127\.0\.0\.1:\d+/);
      await expect(waitForPort(port, 300)).rejects.toThrow(/nothing listening/);
      mgmt.deleteDisk(d.diskId);
    } finally {
      out.mockRestore();
      mgmt.close();
    }
  });

  const bin = path.join(__dirname, "../../bin/encdisk.js");
  const built = path.join(__dirname, "../../dist/provider/engine/cli/serve.js");
  const fresh = fs.existsSync(built) && fs.statSync(built).mtimeMs >= fs.statSync(path.join(__dirname, "../../provider/engine/cli/serve.ts")).mtimeMs;
  (fresh ? test : test.skip)("as `encdisk serve` (child process): logs events, exits 0 on SIGINT", async () => {
    const { mgmt, instanceId } = setup();
    const d = mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true });
    const a = mgmt.attachDisk({ diskId: d.diskId, instanceId });
    const port = await freePort();
    const child = spawn(process.execPath, [bin, "serve", "--dir", dir, "--listen", `127.0.0.1:${port}`, "--kms-root-key-file", rootKeyFile], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stdout += b.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      await waitForPort(port);
      const r = await run("nbdinfo", ["--size", nbdsUri(port, a.attachmentId, a.pskFile)]);
      expect(r.stderr).toBe("");
      expect(Number(r.stdout.trim())).toBe(a.capacityBytes);
      child.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(stdout).toContain(`export ${a.attachmentId} added`);
      expect(stdout).toMatch(/TLS TLSv1\.[23] \S+ as att-/);
      expect(stdout).toContain("stopped");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      mgmt.detachDisk(a.attachmentId);
      mgmt.deleteDisk(d.diskId);
      mgmt.close();
    }
  });

  (fresh ? requireTools(["nbdcopy"], "encdisk serve FLUSH durability with nbdcopy").test : test.skip)("FLUSH is durable: data copied with nbdcopy --flush survives a SIGKILL of the server", async () => {
    const { mgmt, instanceId } = setup();
    const d = mgmt.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true });
    const a = mgmt.attachDisk({ diskId: d.diskId, instanceId });
    const port = await freePort();
    const child = spawn(process.execPath, [bin, "serve", "--dir", dir, "--listen", `127.0.0.1:${port}`, "--kms-root-key-file", rootKeyFile, "--quiet"], { stdio: "ignore" });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once("exit", (_c, sig) => r(sig)));
    try {
      await waitForPort(port);
      const data = crypto.randomBytes(16 * 1024 * 1024);
      const src = path.join(work, "flush.raw");
      fs.writeFileSync(src, data);
      const r = await run("nbdcopy", ["--flush", src, nbdsUri(port, a.attachmentId, a.pskFile)]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      child.kill("SIGKILL");
      expect(await exited).toBe("SIGKILL");
      const fresh2 = openEngine({ dir, kmsRootKeyFile: rootKeyFile });
      try {
        expect(fresh2.read(a.attachmentId, 0, data.length).equals(data)).toBe(true);
        expect(fresh2.check().problems).toEqual([]);
      } finally {
        fresh2.close();
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      mgmt.detachDisk(a.attachmentId);
      mgmt.deleteDisk(d.diskId);
      mgmt.close();
    }
  });
});
