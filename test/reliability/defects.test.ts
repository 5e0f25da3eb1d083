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
function killAt(fsFn: "writeFileSync" | "rmSync", fileRe: string, when: "before" | "after", body: string): void {
  const engineJs = path.join(repoRoot, "dist", "provider", "engine");
  const script = `
    const fs = require("fs");
    const orig = fs.${fsFn};
    fs.${fsFn} = function (f, ...rest) {
      const hit = new RegExp(${JSON.stringify(fileRe)}).test(String(f));
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
});
