/** Issue 12 hardening: input filters (D16), balance bounds (D14). */
import Database from "better-sqlite3";
import { spawn, spawnSync } from "child_process";
import * as path from "path";
import { ErrorCodes } from "../../provider/engine";
import { MAX_BALANCE_MICROS } from "../../provider/engine/engine";
import { errorOf, pattern, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
afterEach(() => t.cleanup());

describe("D16: list filters are validated like every other input", () => {
  test("D16: auditLog refuses a sinceSeq that is not a non-negative whole number ('1 OR 1=1'), and unknown keys (UnknownParameter)", () => {
    t = tempEngine();
    const e = t.engine;
    for (const bad of ["1 OR 1=1", -1, 1.5, NaN, true, {}]) {
      expect(errorOf(() => e.auditLog({ sinceSeq: bad as unknown as number }))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "sinceSeq" });
    }
    expect(errorOf(() => e.auditLog({ since: 1 } as never))).toMatchObject({ code: ErrorCodes.UnknownParameter, property: "since" });
    expect(errorOf(() => e.auditLog({ region: 7 } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "region" });
    expect(errorOf(() => e.auditLog({ resourceId: "" }))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "resourceId" });
    expect(e.auditLog({ sinceSeq: 0 })).toEqual([]);
  });

  test("D16: every list call with a filter refuses wrong types and unknown keys, naming the property", () => {
    t = tempEngine();
    const e = t.engine;
    expect(errorOf(() => e.listDisks({ zone: 3 } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "zone" });
    expect(errorOf(() => e.listDisks({ diskId: "disk-1" } as never))).toMatchObject({ code: ErrorCodes.UnknownParameter, property: "diskId" });
    expect(errorOf(() => e.listSnapshots({ diskId: ["disk-1"] } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "diskId" });
    expect(errorOf(() => e.listSnapshots({ zone: ZONE } as never))).toMatchObject({ code: ErrorCodes.UnknownParameter, property: "zone" });
    expect(errorOf(() => e.listAttachments({ instanceId: null } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "instanceId" });
    expect(errorOf(() => e.listAttachments({ attachmentId: "att-1" } as never))).toMatchObject({ code: ErrorCodes.UnknownParameter, property: "attachmentId" });
    expect(errorOf(() => e.listDisks([] as never))).toMatchObject({ code: ErrorCodes.InvalidParameter });
    expect(errorOf(() => e.listKeys(5 as never))).toMatchObject({ code: ErrorCodes.InvalidRegion, property: "region" });
    expect(errorOf(() => e.kmsUsage("nowhere"))).toMatchObject({ code: ErrorCodes.InvalidRegion, property: "region" });
    // well-formed filters still work
    const d = e.createDisk({ zone: ZONE, sizeGb: 10 });
    expect(e.listDisks({ zone: ZONE }).map((x) => x.diskId)).toEqual([d.diskId]);
    expect(e.listSnapshots({ diskId: d.diskId })).toEqual([]);
  });
});

describe("D14: the balance is bounded and kept as a running balance", () => {
  test("D14: a top-up past the maximum balance is refused naming the maximum, and nothing changes", () => {
    t = tempEngine({ startingBalanceMicros: 0 });
    const e = t.engine;
    e.topUp(Number.MAX_SAFE_INTEGER > MAX_BALANCE_MICROS ? MAX_BALANCE_MICROS - 5 : 1);
    const err = errorOf(() => e.topUp(Number.MAX_SAFE_INTEGER));
    expect(err).toMatchObject({ code: ErrorCodes.BalanceLimit, rule: "B3", property: "amount" });
    expect(err.message).toContain(String(MAX_BALANCE_MICROS));
    expect(errorOf(() => e.topUp(6))).toMatchObject({ code: ErrorCodes.BalanceLimit });
    e.topUp(5);
    expect(e.getAccount().balanceMicros).toBe(MAX_BALANCE_MICROS);
    // 1,023 top-ups of 2^53-1 (which overflowed SQLite before) are all refused; encrypted work still runs
    for (let i = 0; i < 1023; i++) expect(() => e.topUp(Number.MAX_SAFE_INTEGER)).toThrow(/LimitExceeded.AccountBalance/);
    e.authorizeKms();
    e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(e.getAccount().balanceMicros).toBe(MAX_BALANCE_MICROS - 6);
    expect(e.check().problems).toEqual([]);
    expect(errorOf(() => t.reopen({ startingBalanceMicros: MAX_BALANCE_MICROS + 1 }))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "startingBalanceMicros" });
  });

  test("D14: a directory whose ledger already went past the bound (before it existed) still bills, and check reports the balance", () => {
    t = tempEngine({ startingBalanceMicros: 0 });
    t.engine.authorizeKms();
    const db = new Database(path.join(t.dir, "state.db"));
    try {
      // what ~1,023 unbounded top-ups of 2^53-1 left behind, as migration 3 finds it (clamped)
      for (let i = 0; i < 2; i++) db.prepare("INSERT INTO ledger (time, kind, amount_micros) VALUES ('2026-01-01T00:00:00Z', 'topup', ?)").run(Number.MAX_SAFE_INTEGER);
      db.prepare("UPDATE account SET balance_micros = ?").run(Number.MAX_SAFE_INTEGER);
    } finally {
      db.close();
    }
    t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(errorOf(() => t.engine.topUp(1))).toMatchObject({ code: ErrorCodes.BalanceLimit });
    expect(t.engine.check().problems.join("\n")).toMatch(/allowed: 0 to 1000000000000000/);
  });

  test("D14: the running balance is the account row, checked against the ledger by check", () => {
    t = tempEngine({ startingBalanceMicros: 1000, pricePerCallMicros: 10 });
    t.engine.authorizeKms();
    t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    t.engine.topUp(90);
    expect(t.engine.getAccount().balanceMicros).toBe(1080);
    const db = new Database(path.join(t.dir, "state.db"));
    try {
      expect(db.prepare("SELECT balance_micros AS b FROM account").get()).toEqual({ b: 1080 });
      db.prepare("UPDATE account SET balance_micros = 5").run();
    } finally {
      db.close();
    }
    expect(t.engine.check().problems.join("\n")).toMatch(/balance is 5 but the ledger sums to 1080/);
  });
});

describe("migrate resume: an interrupted migration is reported by check and resumed by the CLI", () => {
  const cli = path.resolve(__dirname, "../../bin/encdisk.js");
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args, "--dir", t.dir, "--kms-root-key-file", t.keyFile], { encoding: "utf8" });

  test("M1: a migrate SIGKILLed mid-copy leaves a DUMPING disk that check reports and `encdisk migrate` with the same target resumes", async () => {
    t = tempEngine();
    const e = t.engine;
    e.authorizeKms();
    const src = e.createDisk({ zone: ZONE, sizeGb: 10 });
    const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = e.attachDisk({ diskId: src.diskId, instanceId: ins.instanceId });
    const data = pattern(256 << 20, "RESUME-ME");
    for (let off = 0; off < data.length; off += 32 << 20) e.write(a.attachmentId, off, data.subarray(off, off + (32 << 20)));
    t.engine.close();

    // The CLI's migrate, killed as soon as the target disk holds some committed units (the copy
    // is then part done). The CLI draws progress only on a terminal, so the state is watched.
    const child = spawn(process.execPath, [cli, "migrate", src.diskId, "--encrypt", "--dir", t.dir, "--kms-root-key-file", t.keyFile], { env: { ...process.env, ENCDISK_NATIVE: "0", ENCDISK_CIPHER_THREADS: "1" } });
    const signal = await new Promise<string | null>((resolve) => {
      const watch = setInterval(() => {
        let db: Database.Database | undefined;
        try {
          db = new Database(path.join(t.dir, "state.db"), { readonly: true, fileMustExist: true });
          const r = db.prepare("SELECT COUNT(*) AS n FROM units WHERE owner_id <> ?").get(src.diskId) as { n: number };
          if (r.n > 0) child.kill("SIGKILL");
        } catch {
          /* busy or not there yet: look again */
        } finally {
          db?.close();
        }
      }, 5);
      child.on("exit", (_code, sig) => (clearInterval(watch), resolve(sig)));
    });
    expect(signal).toBe("SIGKILL");

    const e2 = t.reopen();
    const target = e2.listDisks().find((d) => d.diskId !== src.diskId);
    expect(target?.state).toBe("DUMPING");
    expect(target?.usedBytes).toBeLessThan(256 << 20);
    e2.close();
    const check = run(["check"]);
    expect(check.status).toBe(1);
    expect(check.stdout).toContain(`disk ${target?.diskId} is DUMPING: its migration from ${src.diskId} did not complete`);

    const resumed = run(["migrate", src.diskId, "--encrypt"]);
    expect(resumed.stderr).toContain(`resuming the interrupted migration onto ${target?.diskId}`);
    expect(resumed.status).toBe(0);
    expect(resumed.stdout).toContain(`${target?.diskId} (encrypted) holds the data of ${src.diskId}`);
    expect(run(["check"]).status).toBe(0);

    const e3 = t.reopen();
    expect(e3.listDisks()).toHaveLength(2);
    const b = e3.attachDisk({ diskId: target?.diskId as string, instanceId: e3.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" }).instanceId });
    expect(e3.getDisk(target?.diskId as string)).toMatchObject({ encrypted: true, usedBytes: 256 << 20 });
    expect(e3.read(b.attachmentId, 200 << 20, 8 << 20).equals(data.subarray(200 << 20, 208 << 20))).toBe(true);
    expect(errorOf(() => e3.resumeMigration(target?.diskId as string))).toMatchObject({ code: ErrorCodes.InvalidParameter, property: "diskId" });
  }, 120_000);
});
