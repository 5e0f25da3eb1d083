/**
 * Engine defects this suite found (docs/reliability.md, "Defects"), one test each. A defect
 * still open is a `test.failing` (it passes while the defect is there and starts failing when
 * the engine is fixed: then make it a plain `test`); a fixed one is a plain regression test.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { EngineError, openEngine, type Engine } from "../../provider/engine";
import { repoRoot, tempEngine, type TempEngine } from "./helpers";

let te: TempEngine;
let e: Engine;
beforeEach(() => {
  te = tempEngine("defect");
  e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
  e.authorizeKms();
});
afterEach(() => {
  e.close();
  te.cleanup();
});

function engineErrorOf(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    return err as EngineError;
  }
  throw new Error("expected a failure");
}

/**
 * Runs a child process that opens the engine, patches `fs.<fn>` to SIGKILL itself right after
 * (or before) touching a file whose name matches, then runs `body`. Deterministic crash points.
 */
/** Returns false when the crash point was never reached (the body completed normally). */
function killAt(fsFn: "writeFileSync" | "rmSync" | "writevSync" | "renameSync", fileRe: string, when: "before" | "after", body: string, nth = 1): boolean {
  const engineJs = path.join(repoRoot, "dist", "provider", "engine");
  const script = `
    const fs = require("fs");
    const orig = fs.${fsFn};
    let calls = 0;
    fs.${fsFn} = function (f, ...rest) {
      const hit = new RegExp(${JSON.stringify(fileRe)}).test(String(f)) && ++calls === ${nth};
      if (hit && ${JSON.stringify(when)} === "before") process.kill(process.pid, "SIGKILL");
      const r = orig.call(this, f, ...rest);
      if (hit && ${JSON.stringify(when)} === "after") process.kill(process.pid, "SIGKILL");
      return r;
    };
    const E = require(${JSON.stringify(engineJs)});
    const e = E.openEngine({ dir: ${JSON.stringify(te.dir)}, kmsRootKeyFile: ${JSON.stringify(te.kmsRootKeyFile)} });
    ${body}
  `;
  try {
    execFileSync(process.execPath, ["-e", script], { stdio: "pipe" });
  } catch (err) {
    expect((err as { signal?: string; stderr?: Buffer }).signal ?? String((err as { stderr?: Buffer }).stderr)).toBe("SIGKILL");
    return true;
  }
  return false;
}

describe("defects found by the reliability suite", () => {
  test("D1: a non-string clientToken or keyId gives an EngineError naming the property (not a better-sqlite3 RangeError)", () => {
    const err = engineErrorOf(() => e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 10, clientToken: {} as never }));
    expect(err.property).toBe("clientToken");
    expect(engineErrorOf(() => e.describeKey({} as never)).property).toBe("keyId");
    expect(engineErrorOf(() => e.listDisks({ zone: 1.5 as never })).property).toBe("zone");
  });

  test("D2: a BigInt id or an object with a non-callable toString gives an EngineError (not a TypeError from the message formatting)", () => {
    expect(engineErrorOf(() => e.getDisk(10n as never)).property).toBe("diskId");
    expect(engineErrorOf(() => e.detachDisk({ toString: "x" } as never)).property).toBe("attachmentId");
    expect(engineErrorOf(() => e.topUp(5n as never)).property).toBe("amount");
  });

  test("D3: a null input object gives an EngineError (createSnapshot, createImage, migrateDisk, listDisks, auditLog)", () => {
    for (const f of [() => e.createSnapshot(null as never), () => e.createImage(null as never), () => e.migrateDisk(null as never), () => e.listDisks(null as never), () => e.auditLog(null as never)]) engineErrorOf(f);
  });

  test("D4: a kill during attach (key file written, transaction not committed) leaves no orphan that check() reports after reopen", () => {
    const d = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 1, encrypt: true });
    const i = e.createInstance({ zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" });
    e.close();
    // Killed right after the key file is written (before or after the commit, whichever the engine does).
    killAt("writeFileSync", "\\.psk$", "after", `e.attachDisk({ diskId: ${JSON.stringify(d.diskId)}, instanceId: ${JSON.stringify(i.instanceId)} });`);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    expect(e.check().problems).toEqual([]);
    // Either way the retried attach converges on one attachment with its key file.
    const a = e.attachDisk({ diskId: d.diskId, instanceId: i.instanceId });
    expect(fs.existsSync(a.pskFile)).toBe(true);
    expect(e.check().problems).toEqual([]);
  });

  test("D5: a kill after deleteDisk committed but before its block file was removed leaves no orphan that check() reports after reopen", () => {
    const d = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 1, encrypt: true });
    const i = e.createInstance({ zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" });
    const a = e.attachDisk({ diskId: d.diskId, instanceId: i.instanceId });
    e.write(a.attachmentId, 0, Buffer.alloc(100_000, 1));
    e.detachDisk(a.attachmentId);
    e.close();
    killAt("rmSync", "\\.dat$", "before", `e.deleteDisk(${JSON.stringify(d.diskId)});`);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    expect(e.findDisk(d.diskId)).toBeNull();
    expect(e.check().problems).toEqual([]);
    expect(fs.readdirSync(path.join(te.dir, "blocks"))).toEqual([]);
  });

  test("D6: L7: an encrypted disk cannot be attached to an instance type with local storage, even when created with localStorage: false", () => {
    const d = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 10, encrypt: true });
    let instanceId: string;
    try {
      instanceId = e.createInstance({ zone: "ap-guangzhou-3", instanceType: "IT5.4XLARGE64", localStorage: false }).instanceId;
    } catch (err) {
      // Refusing the contradiction up front is a fix too.
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).property).toBe("localStorage");
      return;
    }
    const err = engineErrorOf(() => e.attachDisk({ diskId: d.diskId, instanceId }));
    expect(err.code).toBe("UnsupportedOperation.InstanceLocalStorage");
  });

  test("D12: C3/L4: a create retried with the same clientToken but encrypt: true never silently returns the earlier plain disk", () => {
    const plain = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 10, clientToken: "tok-1" });
    let second: ReturnType<Engine["createDisk"]> | undefined;
    try {
      second = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 10, encrypt: true, clientToken: "tok-1" });
    } catch (err) {
      expect(err).toBeInstanceOf(EngineError); // refusing (e.g. IdempotentParameterMismatch) is fine
      return;
    }
    expect(second.diskId === plain.diskId && !second.encrypted).toBe(false);
  });

  test("D12: migrateDisk with a clientToken that a createDisk already used neither returns that disk nor wipes its data", () => {
    const z = "ap-guangzhou-3";
    const ins = e.createInstance({ zone: z, instanceType: "S5.MEDIUM4" });
    const mine = e.createDisk({ zone: z, sizeGb: 10, clientToken: "shared-token" });
    const a = e.attachDisk({ diskId: mine.diskId, instanceId: ins.instanceId });
    e.write(a.attachmentId, 0, Buffer.alloc(65536, 0x41));
    e.detachDisk(a.attachmentId);
    const src = e.createDisk({ zone: z, sizeGb: 10 });
    let m: ReturnType<Engine["migrateDisk"]> | undefined;
    try {
      m = e.migrateDisk({ sourceDiskId: src.diskId, encrypt: true, clientToken: "shared-token" });
    } catch (err) {
      expect(err).toBeInstanceOf(EngineError); // refusing the colliding token is fine
    }
    if (m) expect(m.diskId).not.toBe(mine.diskId);
    const a2 = e.attachDisk({ diskId: mine.diskId, instanceId: ins.instanceId });
    expect(e.read(a2.attachmentId, 0, 4).toString("hex")).toBe("41414141");
  });

  test("D13: a migration killed mid-copy leaves no disk that looks complete: the half-copied target has a clear state or check() reports it", () => {
    const z = "ap-guangzhou-3";
    const ins = e.createInstance({ zone: z, instanceType: "S5.MEDIUM4" });
    const src = e.createDisk({ zone: z, sizeGb: 1, encrypt: true });
    const a = e.attachDisk({ diskId: src.diskId, instanceId: ins.instanceId });
    e.write(a.attachmentId, 0, Buffer.alloc(12 * 1024 * 1024, 0x5a)); // 192 units: three copy batches
    e.detachDisk(a.attachmentId);
    e.close();
    // Kill after the first batch of the copy was written (second writev of the migration).
    killAt("writevSync", ".", "after", `e.migrateDisk({ sourceDiskId: ${JSON.stringify(src.diskId)}, encrypt: false });`, 2);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    const target = e.listDisks().find((d) => d.diskId !== src.diskId);
    expect(target).toBeDefined();
    const t = target as NonNullable<typeof target>;
    expect(t.usedBytes).toBeLessThan(12 * 1024 * 1024); // it is indeed half-copied
    const flagged = t.state !== "UNATTACHED" || e.check().problems.some((p) => p.includes(t.diskId));
    expect(flagged).toBe(true);
  });

  test("D16: a migrateDisk refused for its parameters (sizeGb smaller than the source) changes nothing: no new disk, no KMS charge", () => {
    const src = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 20 });
    const disks = e.listDisks().length;
    const audit = e.auditLog().length;
    const err = engineErrorOf(() => e.migrateDisk({ sourceDiskId: src.diskId, encrypt: true, sizeGb: 10 }));
    expect(err.property).toBe("sizeGb");
    expect(e.listDisks().length).toBe(disks);
    expect(e.auditLog().length).toBe(audit);
    expect(e.check().problems).toEqual([]);
  });

  test("D17: BigInt or hostile objects no longer crash three paths: clientToken fingerprint, isRegion, writeZeroes length", () => {
    const z = "ap-guangzhou-3";
    const d = e.createDisk({ zone: z, sizeGb: 10 });
    const i = e.createInstance({ zone: z, instanceType: "S5.MEDIUM4" });
    const a = e.attachDisk({ diskId: d.diskId, instanceId: i.instanceId });
    const s = e.createSnapshot({ diskId: d.diskId });
    const hostile = Object.create(null) as object;
    expect(engineErrorOf(() => e.createImage({ name: "x", snapshotIds: [s.snapshotId, 8n as never], clientToken: "t-1" })).property).toBe("snapshotIds");
    expect(engineErrorOf(() => e.copySnapshot({ snapshotId: s.snapshotId, destinationRegion: [hostile] as never })).property).toBe("destinationRegion");
    expect(engineErrorOf(() => e.kmsUsage(hostile as never)).property).toBe("region");
    expect(engineErrorOf(() => e.writeZeroes(a.attachmentId, 0, 1n as never)).property).toBe("length");
  });

  test("D19: a killed attach's temporary key file does not become an orphan that check() reports in a process that opened before it aged (only a reopen sweeps it)", () => {
    const d = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 1, encrypt: true });
    const i = e.createInstance({ zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" });
    e.close();
    // Killed after the temporary key file was written, before its rename.
    const reached = killAt("renameSync", "\\.tmp$", "before", `e.attachDisk({ diskId: ${JSON.stringify(d.diskId)}, instanceId: ${JSON.stringify(i.instanceId)} });`);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    expect(e.check().problems).toEqual([]);
    if (!reached) return; // no temporary key file in this engine version: nothing can be left behind
    // A minute later, in the same long-lived process (a server, a provider host):
    const nbd = path.join(te.dir, "nbd");
    const old = (Date.now() - 120_000) / 1000;
    for (const f of fs.readdirSync(nbd)) fs.utimesSync(path.join(nbd, f), old, old);
    expect(e.check().problems).toEqual([]);
  });

  test("W1: the read cache of decrypted units never serves data that another engine handle (another process) has since overwritten or rolled back", () => {
    const z = "ap-guangzhou-3";
    const d = e.createDisk({ zone: z, sizeGb: 1, encrypt: true });
    const i = e.createInstance({ zone: z, instanceType: "S5.MEDIUM4" });
    const att = e.attachDisk({ diskId: d.diskId, instanceId: i.instanceId }).attachmentId;
    e.write(att, 0, Buffer.alloc(65536, 1));
    const other = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    try {
      expect(other.read(att, 0, 4).toString("hex")).toBe("01010101"); // now cached there
      e.write(att, 0, Buffer.alloc(65536, 2));
      expect(other.read(att, 0, 4).toString("hex")).toBe("02020202");
      other.write(att, 100, Buffer.alloc(10, 3)); // a partial write merges with the current data
      expect(e.read(att, 0, 4).toString("hex")).toBe("02020202");
      expect(e.read(att, 100, 2).toString("hex")).toBe("0303");
      e.detachDisk(att);
      const s = e.createSnapshot({ diskId: d.diskId });
      const att2 = e.attachDisk({ diskId: d.diskId, instanceId: i.instanceId }).attachmentId;
      other.write(att2, 0, Buffer.alloc(65536, 4));
      expect(e.read(att2, 0, 4).toString("hex")).toBe("04040404");
      e.detachDisk(att2);
      e.applySnapshot(s.snapshotId, d.diskId);
      const att3 = e.attachDisk({ diskId: d.diskId, instanceId: i.instanceId }).attachmentId;
      expect(other.read(att3, 0, 4).toString("hex")).toBe("02020202");
      expect(other.read(att3, 100, 2).toString("hex")).toBe("0303");
    } finally {
      other.close();
    }
  });

  test("B3: operations refused for an insufficient balance change nothing (no disk, attachment, key file, snapshot, migration target, audit entry or charge)", () => {
    e.close();
    te.cleanup();
    te = tempEngine("balance");
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile, startingBalanceMicros: 10, pricePerCallMicros: 6 });
    e.authorizeKms();
    const z = "ap-guangzhou-3";
    const d = e.createDisk({ zone: z, sizeGb: 1, encrypt: true }); // balance 10 -> 4
    const i = e.createInstance({ zone: z, instanceType: "S5.MEDIUM4" });
    const plain = e.createDisk({ zone: z, sizeGb: 1 });
    const state = () => JSON.stringify({ disks: e.listDisks().map((x) => x.diskId), snaps: e.listSnapshots().length, atts: e.listAttachments().length, audit: e.auditLog().length, balance: e.getAccount().balanceMicros, nbd: fs.existsSync(path.join(te.dir, "nbd")) ? fs.readdirSync(path.join(te.dir, "nbd")) : [] });
    const before = state();
    for (const f of [
      () => e.attachDisk({ diskId: d.diskId, instanceId: i.instanceId }),
      () => e.createSnapshot({ diskId: d.diskId, clientToken: "s" }),
      () => e.createDisk({ zone: z, sizeGb: 1, encrypt: true, clientToken: "c" }),
      () => e.migrateDisk({ sourceDiskId: plain.diskId, encrypt: true, clientToken: "m" }),
    ]) {
      expect(engineErrorOf(f).code).toBe("InvalidAccount.InsufficientBalance");
      expect(state()).toBe(before);
    }
    expect(e.check().problems).toEqual([]);
  });
});
