/** Issue 12: the state the ciphertext does not cover is sealed under the KMS root key (D7, D10). */
import Database from "better-sqlite3";
import * as fs from "fs";
import * as path from "path";
import { ErrorCodes } from "../../provider/engine";
import { errorOf, pattern, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
afterEach(() => t.cleanup());

/** A second SQLite handle on the engine's state, as an attacker with write access has. */
function tamper<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(path.join(t.dir, "state.db"), { timeout: 10_000 });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function encryptedAttached(encrypt = true) {
  t = tempEngine();
  const e = t.engine;
  e.authorizeKms();
  const d = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt });
  const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const a = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
  return { e, d, a };
}

describe("D7: a lineage's encryption flag, key id and region are sealed", () => {
  test("D7: clearing disks.encrypted and lineages.encrypted in state.db refuses reads and writes (running and reopened engine), and check reports it", () => {
    const { e, d, a } = encryptedAttached();
    const secret = pattern(1 << 20, "SECRET-D7");
    e.write(a.attachmentId, 0, secret);
    tamper((db) => {
      db.prepare("UPDATE disks SET encrypted = 0 WHERE disk_id = ?").run(d.diskId);
      db.prepare("UPDATE lineages SET encrypted = 0").run();
    });
    // the running engine notices the changed row on the next call
    expect(errorOf(() => e.read(a.attachmentId, 0, 65536))).toMatchObject({ code: ErrorCodes.LineageTampered });
    expect(errorOf(() => e.write(a.attachmentId, 1 << 20, pattern(65536, "NEW")))).toMatchObject({ code: ErrorCodes.LineageTampered });
    // and so does a fresh process
    const e2 = t.reopen();
    expect(errorOf(() => e2.read(a.attachmentId, 0, 65536)).message).toMatch(/seal of lineage .* does not match/);
    expect(errorOf(() => e2.write(a.attachmentId, 0, pattern(65536, "PLAINTEXT-LEAK")))).toMatchObject({ code: ErrorCodes.LineageTampered });
    const problems = e2.check().problems.join("\n");
    expect(problems).toMatch(/seal of lineage/);
    expect(problems).toMatch(/units with nonces or tags/);
    expect(problems).toMatch(/names a KMS key id although it is plain/);
    // nothing was written in plaintext
    for (const f of fs.readdirSync(path.join(t.dir, "blocks"))) expect(fs.readFileSync(path.join(t.dir, "blocks", f)).includes(Buffer.from("PLAINTEXT-LEAK"))).toBe(false);
  });

  test("D7: a plain lineage's seal says plain: setting the flag to encrypted, or changing the region, is refused", () => {
    const { e, d, a } = encryptedAttached(false);
    e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true }); // the directory now has a root key: plain lineages are sealed too
    e.write(a.attachmentId, 0, pattern(65536));
    expect(e.check().problems).toEqual([]);
    tamper((db) => {
      db.prepare("UPDATE disks SET encrypted = 1 WHERE disk_id = ?").run(d.diskId);
      db.prepare("UPDATE lineages SET encrypted = 1 WHERE lineage_id = (SELECT lineage_id FROM disks WHERE disk_id = ?)").run(d.diskId);
    });
    expect(errorOf(() => e.read(a.attachmentId, 0, 65536))).toMatchObject({ code: ErrorCodes.LineageTampered });
    tamper((db) => db.prepare("UPDATE lineages SET region = 'ap-shanghai' WHERE lineage_id = (SELECT lineage_id FROM disks WHERE disk_id = ?)").run(d.diskId));
    tamper((db) => db.prepare("UPDATE disks SET region = 'ap-shanghai' WHERE disk_id = ?").run(d.diskId));
    expect(errorOf(() => e.read(a.attachmentId, 0, 65536)).message).toMatch(/does not match its state/);
    tamper((db) => db.prepare("UPDATE lineages SET region = 'ap-guangzhou'").run());
    tamper((db) => db.prepare("UPDATE disks SET region = 'ap-guangzhou' WHERE disk_id = ?").run(d.diskId));
    tamper((db) => {
      db.prepare("UPDATE disks SET encrypted = 0 WHERE disk_id = ?").run(d.diskId);
      db.prepare("UPDATE lineages SET encrypted = 0 WHERE lineage_id = (SELECT lineage_id FROM disks WHERE disk_id = ?)").run(d.diskId);
    });
    expect(e.read(a.attachmentId, 0, 65536).equals(pattern(65536))).toBe(true);
    // removing the seal of a sealed directory is tampering too, not a legacy lineage
    tamper((db) => db.prepare("UPDATE lineages SET mac = NULL").run());
    const e2 = t.reopen();
    expect(errorOf(() => e2.read(a.attachmentId, 0, 65536)).message).toMatch(/has no seal although every lineage/);
  });

  test("D7: lineages of a directory from before seals are sealed at the first open with the root key; a plain-only directory without a root key still works", () => {
    const { e, a, d } = encryptedAttached();
    e.write(a.attachmentId, 0, pattern(65536));
    const plain = e.createDisk({ zone: ZONE, sizeGb: 10 });
    e.close();
    // an upgraded directory: no seals, no map MACs, no marker
    tamper((db) => {
      db.prepare("UPDATE lineages SET mac = NULL").run();
      db.prepare("UPDATE disks SET map_mac = NULL").run();
      db.prepare("DELETE FROM meta WHERE k = 'integrity_sealed'").run();
    });
    const e2 = t.reopen();
    expect(e2.read(a.attachmentId, 0, 65536).equals(pattern(65536))).toBe(true);
    expect(e2.check().problems).toEqual([]);
    expect(tamper((db) => db.prepare("SELECT COUNT(*) AS n FROM lineages WHERE mac IS NULL").get())).toEqual({ n: 0 });
    expect(tamper((db) => db.prepare("SELECT COUNT(*) AS n FROM meta WHERE k = 'integrity_sealed'").get())).toEqual({ n: 1 });
    expect(plain.diskId).not.toBe(d.diskId);

    // plain-only, no key file anywhere: opening, creating plain disks and check work and create
    // no key file; the first attachment needs its PSK, whose secret is wrapped under the root key
    // (D6), so it creates the root key, and the plain lineage is sealed from then on
    const t2 = tempEngine();
    try {
      const p = t2.engine.createDisk({ zone: ZONE, sizeGb: 10 });
      const ins = t2.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
      expect(t2.engine.check().problems).toEqual([]);
      expect(fs.existsSync(t2.keyFile)).toBe(false);
      const pa = t2.engine.attachDisk({ diskId: p.diskId, instanceId: ins.instanceId });
      expect(fs.existsSync(t2.keyFile)).toBe(true);
      t2.engine.write(pa.attachmentId, 0, pattern(65536));
      expect(t2.engine.read(pa.attachmentId, 0, 65536).equals(pattern(65536))).toBe(true);
      expect(t2.engine.check().problems).toEqual([]);
    } finally {
      t2.cleanup();
    }
  });
});

describe("D10: each block map carries a MAC kept current in the write's transaction", () => {
  test("D10: a unit rolled back to its older row (still held by a snapshot, so GCM authenticates it) is refused, and check reports it", () => {
    const { e, d, a } = encryptedAttached();
    e.write(a.attachmentId, 0, pattern(65536, "OLD-VERSION"));
    const s = e.createSnapshot({ diskId: d.diskId });
    e.write(a.attachmentId, 0, pattern(65536, "NEW-VERSION"));
    tamper((db) => {
      const old = db.prepare("SELECT slot, nonce, tag FROM units WHERE owner_id = ? AND idx = 0").get(s.snapshotId) as { slot: number; nonce: Buffer; tag: Buffer };
      db.prepare("UPDATE units SET slot = ?, nonce = ?, tag = ? WHERE owner_id = ? AND idx = 0").run(old.slot, old.nonce, old.tag, d.diskId);
    });
    const e2 = t.reopen();
    const err = errorOf(() => e2.read(a.attachmentId, 0, 65536));
    expect(err).toMatchObject({ code: ErrorCodes.BlockMapTampered });
    expect(err.message).toMatch(/rolled back/);
    expect(e2.check().problems.join("\n")).toMatch(new RegExp(`block map of ${d.diskId} .* does not match its MAC`));
  });

  test("D10: a deleted map row (which would read as zeros) is reported by check and refused at the next open; the snapshot is unharmed", () => {
    const { e, d, a } = encryptedAttached();
    e.write(a.attachmentId, 0, pattern(4 * 65536));
    const s = e.createSnapshot({ diskId: d.diskId });
    tamper((db) => db.prepare("DELETE FROM units WHERE owner_id = ? AND idx = 2").run(d.diskId));
    // a running engine verified this map when it opened it; check and the next open see the change
    const problems = e.check().problems;
    const e2 = t.reopen();
    expect(errorOf(() => e2.read(a.attachmentId, 2 * 65536, 65536))).toMatchObject({ code: ErrorCodes.BlockMapTampered });
    expect(problems.some((x) => x.includes(`block map of ${d.diskId}`))).toBe(true);
    expect(problems.some((x) => x.includes(`block map of ${s.snapshotId}`))).toBe(false);
  });

  test("D10: ordinary use keeps every MAC current: writes, zeroes, snapshots, clones, roll back, migration, copies", () => {
    const { e, d, a } = encryptedAttached();
    e.write(a.attachmentId, 0, pattern(3 << 20));
    e.writeZeroes(a.attachmentId, 65536, 65536);
    e.write(a.attachmentId, 100, Buffer.from("partial"));
    const s = e.createSnapshot({ diskId: d.diskId });
    e.write(a.attachmentId, 0, pattern(1 << 20, "AFTER"));
    e.detachDisk(a.attachmentId);
    e.applySnapshot(s.snapshotId, d.diskId);
    const clone = e.createDisk({ zone: ZONE, sizeGb: 10, snapshotId: s.snapshotId });
    const m = e.migrateDisk({ sourceDiskId: clone.diskId, encrypt: false });
    const ps = e.createSnapshot({ diskId: m.diskId });
    e.copySnapshot({ snapshotId: ps.snapshotId, destinationRegion: "ap-shanghai" });
    const e2 = t.reopen();
    expect(e2.check().problems).toEqual([]);
    const ins = e2.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const b = e2.attachDisk({ diskId: m.diskId, instanceId: ins.instanceId });
    const want = pattern(3 << 20);
    want.fill(0, 65536, 2 * 65536);
    Buffer.from("partial").copy(want, 100);
    expect(e2.read(b.attachmentId, 0, 3 << 20).equals(want)).toBe(true);
  });
});

describe("verifying seals needs no write lock, and a copy is not a snapshot of the disk", () => {
  afterEach(() => t?.cleanup());

  test("D3: D10: the first read of a sealed disk by a new process verifies its seal and map in a read transaction, while another connection holds the write lock", () => {
    t = tempEngine();
    t.engine.authorizeKms();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 1 });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" }).instanceId });
    t.engine.write(a.attachmentId, 0, pattern(1 << 20));
    const e = t.reopen(); // nothing verified yet in this engine
    const holder = new Database(path.join(t.dir, "state.db"));
    holder.exec("BEGIN IMMEDIATE");
    try {
      // Had the verification needed the write lock, this (synchronous) call would wait out the busy timeout and fail.
      const started = Date.now();
      expect(e.read(a.attachmentId, 0, 1 << 20).equals(pattern(1 << 20))).toBe(true);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      holder.exec("ROLLBACK");
      holder.close();
    }
  });

  test("D10: rolling a disk back to a cross-region copy of its own snapshot is refused (the copy has its own lineage), nothing changes", () => {
    t = tempEngine();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 1, encrypt: false });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" }).instanceId });
    t.engine.write(a.attachmentId, 0, pattern(65536));
    t.engine.detachDisk(a.attachmentId);
    const s = t.engine.createSnapshot({ diskId: d.diskId });
    const copy = t.engine.copySnapshot({ snapshotId: s.snapshotId, destinationRegion: "ap-shanghai" });
    expect(errorOf(() => t.engine.applySnapshot(copy.snapshotId, d.diskId))).toMatchObject({ code: ErrorCodes.SnapshotNotFromDisk, property: "snapshotId" });
    t.engine.applySnapshot(s.snapshotId, d.diskId);
    expect(t.engine.check().problems).toEqual([]);
  });
});
