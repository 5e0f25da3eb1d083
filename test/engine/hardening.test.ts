/** Issue 12 hardening: input filters (D16), balance bounds (D14). */
import Database from "better-sqlite3";
import * as path from "path";
import { ErrorCodes } from "../../provider/engine";
import { MAX_BALANCE_MICROS } from "../../provider/engine/engine";
import { errorOf, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
afterEach(() => t.cleanup());

describe("D16: list filters are validated like every other input", () => {
  test("D16: auditLog refuses a sinceSeq that is not a non-negative whole number, and unknown keys", () => {
    t = tempEngine();
    const e = t.engine;
    for (const bad of ["1 OR 1=1", -1, 1.5, NaN, true, {}]) {
      expect(errorOf(() => e.auditLog({ sinceSeq: bad as unknown as number }))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "sinceSeq" });
    }
    expect(errorOf(() => e.auditLog({ since: 1 } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "since" });
    expect(errorOf(() => e.auditLog({ region: 7 } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "region" });
    expect(errorOf(() => e.auditLog({ resourceId: "" }))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "resourceId" });
    expect(e.auditLog({ sinceSeq: 0 })).toEqual([]);
  });

  test("D16: every list call with a filter refuses wrong types and unknown keys, naming the property", () => {
    t = tempEngine();
    const e = t.engine;
    expect(errorOf(() => e.listDisks({ zone: 3 } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "zone" });
    expect(errorOf(() => e.listDisks({ diskId: "disk-1" } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "diskId" });
    expect(errorOf(() => e.listSnapshots({ diskId: ["disk-1"] } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "diskId" });
    expect(errorOf(() => e.listSnapshots({ zone: ZONE } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "zone" });
    expect(errorOf(() => e.listAttachments({ instanceId: null } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "instanceId" });
    expect(errorOf(() => e.listAttachments({ attachmentId: "att-1" } as never))).toMatchObject({ code: ErrorCodes.InvalidParameterValue, property: "attachmentId" });
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
