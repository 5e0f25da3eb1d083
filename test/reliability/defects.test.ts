/**
 * Reproductions of engine defects this suite found (docs/reliability.md, "Defects"). Each is a
 * `test.failing`: it passes while the defect is there and starts failing when the engine is
 * fixed — then turn it into a plain `test` and drop the matching entry in known-defects.ts /
 * KNOWN_CRASH_DEFECTS.
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
function killAt(fsFn: "writeFileSync" | "rmSync" | "writevSync", fileRe: string, when: "before" | "after", body: string, nth = 1): void {
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
    expect((err as { signal?: string }).signal).toBe("SIGKILL");
    return;
  }
  throw new Error("the crash point was never reached");
}

describe("defects found by the reliability suite", () => {
  test.failing("D1: a non-string clientToken or keyId gives an EngineError naming the property (not a better-sqlite3 RangeError)", () => {
    const err = engineErrorOf(() => e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 10, clientToken: {} as never }));
    expect(err.property).toBe("clientToken");
    expect(engineErrorOf(() => e.describeKey({} as never)).property).toBe("keyId");
    expect(engineErrorOf(() => e.listDisks({ zone: 1.5 as never })).property).toBe("zone");
  });

  test.failing("D2: a BigInt id or an object with a non-callable toString gives an EngineError (not a TypeError from the message formatting)", () => {
    expect(engineErrorOf(() => e.getDisk(10n as never)).property).toBe("diskId");
    expect(engineErrorOf(() => e.detachDisk({ toString: "x" } as never)).property).toBe("attachmentId");
    expect(engineErrorOf(() => e.topUp(5n as never)).property).toBe("amount");
  });

  test.failing("D3: a null input object gives an EngineError (createSnapshot, createImage, migrateDisk, listDisks, auditLog)", () => {
    for (const f of [() => e.createSnapshot(null as never), () => e.createImage(null as never), () => e.migrateDisk(null as never), () => e.listDisks(null as never), () => e.auditLog(null as never)]) engineErrorOf(f);
  });

  test.failing("D4: a kill during attach (key file written, transaction not committed) leaves no orphan that check() reports after reopen", () => {
    const d = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 1, encrypt: true });
    const i = e.createInstance({ zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" });
    e.close();
    killAt("writeFileSync", "\\.psk$", "after", `e.attachDisk({ diskId: ${JSON.stringify(d.diskId)}, instanceId: ${JSON.stringify(i.instanceId)} });`);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    expect(e.listAttachments()).toEqual([]);
    expect(e.check().problems).toEqual([]);
  });

  test.failing("D5: a kill after deleteDisk committed but before its block file was removed leaves no orphan that check() reports after reopen", () => {
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

  test.failing("D6: L7: an encrypted disk cannot be attached to an instance type with local storage, even when created with localStorage: false", () => {
    const d = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 10, encrypt: true });
    const i = e.createInstance({ zone: "ap-guangzhou-3", instanceType: "IT5.4XLARGE64", localStorage: false });
    const err = engineErrorOf(() => e.attachDisk({ diskId: d.diskId, instanceId: i.instanceId }));
    expect(err.code).toBe("UnsupportedOperation.InstanceLocalStorage");
  });

  test.failing("D12: C3/L4: a create retried with the same clientToken but encrypt: true never silently returns the earlier plain disk", () => {
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

  test.failing("D12: migrateDisk with a clientToken that a createDisk already used neither returns that disk nor wipes its data", () => {
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

  test.failing("D13: a migration killed mid-copy leaves no disk that looks complete: the half-copied target has a clear state or check() reports it", () => {
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
});
