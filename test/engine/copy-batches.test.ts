/**
 * D3 (issue 12): copySnapshot / copyImage copy the data in short transactions, so the SQLite
 * write lock is free between batches (another process's write, or the NBD server's, gets in),
 * and the copy still appears all at once: a failed or killed copy leaves nothing visible.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { tempEngine, OTHER_REGION_ZONE, ZONE, type TestEngine } from "./helpers";

const MiB = 1024 * 1024;
type Internals = {
  db: { inTransaction: boolean; prepare(s: string): { get(...a: unknown[]): unknown; all(...a: unknown[]): unknown[]; run(...a: unknown[]): unknown } };
  blocks: { copyAll: (src: unknown, dst: unknown, inTx: (fn: () => void) => void, ...rest: unknown[]) => void };
  dropStaged: (...a: unknown[]) => void;
};

describe("D3: snapshot and image copies do not hold the write lock for their whole duration", () => {
  let t: TestEngine;
  let snapshotId: string;
  let data: Buffer;
  beforeEach(() => {
    t = tempEngine();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 1, encrypt: false });
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    data = crypto.randomBytes(40 * MiB); // 640 units: 10 batches
    t.engine.write(a.attachmentId, 0, data);
    t.engine.detachDisk(a.attachmentId);
    snapshotId = t.engine.createSnapshot({ diskId: d.diskId }).snapshotId;
  });
  afterEach(() => t.cleanup());

  const internals = (): Internals => t.engine as unknown as Internals;
  const region = OTHER_REGION_ZONE.split("-").slice(0, 2).join("-");

  /** Wraps the block store's copy so that `each(batch)` runs before every batch, outside the engine's transaction. */
  function onEachBatch(each: (n: number) => void): void {
    const blocks = internals().blocks;
    const real = blocks.copyAll.bind(blocks);
    let n = 0;
    blocks.copyAll = (src: unknown, dst: unknown, inTx: (fn: () => void) => void, ...rest: unknown[]) =>
      real(src, dst, (fn: () => void) => {
        each(++n);
        inTx(fn);
      }, ...rest);
  }

  test("D3: a copy with an owner (the provider's SnapshotCopy and Image) keeps its batches out of any transaction and is tagged when it appears; wrapping a copy in owned() is refused", () => {
    const owner = "urn:pulumi:dev::p::pulumi-nodejs:dynamic/encdisk:SnapshotCopy::copy";
    const seen: boolean[] = [];
    onEachBatch(() => seen.push(internals().db.inTransaction));
    const copy = t.engine.copySnapshot({ snapshotId, destinationRegion: region, owner });
    expect(seen.length).toBeGreaterThanOrEqual(10);
    expect(seen.every((open) => !open)).toBe(true);
    expect(t.engine.listOwned(owner).map((r) => r.resourceId)).toEqual([copy.snapshotId]);
    const before = t.engine.listSnapshots().length;
    expect(() => t.engine.owned(owner, () => t.engine.copySnapshot({ snapshotId, destinationRegion: region }), (s) => s.snapshotId)).toThrow(/cannot join another one/);
    expect(t.engine.listSnapshots().length).toBe(before);
  });

  test("D3: between the batches of copySnapshot no transaction is open (the write lock is free), and the copy appears only at the end, whole", () => {
    const seen: { open: boolean; visible: number }[] = [];
    const before = t.engine.listSnapshots().length;
    onEachBatch(() => seen.push({ open: internals().db.inTransaction, visible: t.engine.listSnapshots().length }));
    const copy = t.engine.copySnapshot({ snapshotId, destinationRegion: region });
    expect(seen.length).toBeGreaterThanOrEqual(10);
    expect(seen.every((s) => !s.open)).toBe(true);
    expect(seen.every((s) => s.visible === before)).toBe(true);
    expect(t.engine.listSnapshots().length).toBe(before + 1);
    const d = t.engine.createDisk({ zone: OTHER_REGION_ZONE, sizeGb: 1, encrypt: false, snapshotId: copy.snapshotId });
    const ins = t.engine.createInstance({ zone: OTHER_REGION_ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    expect(t.engine.read(a.attachmentId, 0, data.length).equals(data)).toBe(true);
    expect(t.engine.check().problems).toEqual([]);
  });

  test("D3: copyImage copies in batches too; a copy failing half-way leaves no snapshot, image, lineage or block file", () => {
    const image = t.engine.createImage({ name: "img", snapshotIds: [snapshotId] });
    const blocksDir = path.join(t.dir, "blocks");
    const files = fs.readdirSync(blocksDir).sort();
    const counts = () => ({ snaps: t.engine.listSnapshots().length, images: t.engine.listImages().length, lineages: (internals().db.prepare("SELECT COUNT(*) AS n FROM lineages").get() as { n: number }).n });
    const was = counts();
    const open: boolean[] = [];
    onEachBatch((n) => {
      open.push(internals().db.inTransaction);
      if (n === 5) throw new Error("copy failed half-way");
    });
    expect(() => t.engine.copyImage({ imageId: image.imageId, destinationRegion: region })).toThrow(/half-way/);
    expect(open.every((o) => !o)).toBe(true);
    expect(counts()).toEqual(was);
    expect(fs.readdirSync(blocksDir).sort()).toEqual(files);
    expect(t.engine.check().problems).toEqual([]);
  });

  test("D3: a copy killed mid-way (nothing cleaned up) stays invisible, is not reported while it may still run, and is swept once its heartbeat is stale", () => {
    internals().dropStaged = () => {
      throw new Error("killed");
    };
    onEachBatch((n) => {
      if (n === 3) throw new Error("process killed");
    });
    const before = t.engine.listSnapshots().length;
    expect(() => t.engine.copySnapshot({ snapshotId, destinationRegion: region })).toThrow(/killed/);
    expect(t.engine.listSnapshots().length).toBe(before);
    const staged = internals().db.prepare("SELECT k, v FROM meta WHERE k LIKE 'copying:%'").all() as { k: string; v: string }[];
    expect(staged).toHaveLength(1);
    // Another process may still be copying: check() does not call it broken.
    expect(t.engine.check().problems).toEqual([]);
    // Its heartbeat stops; past the grace period a reopen sweeps it.
    const { owner } = JSON.parse(staged[0].v) as { owner: string };
    internals().db.prepare("UPDATE meta SET v = ? WHERE k = ?").run(JSON.stringify({ owner, beat: Date.now() - 3_600_000 }), staged[0].k);
    const lineage = staged[0].k.slice("copying:".length);
    t.reopen();
    expect(internals().db.prepare("SELECT COUNT(*) AS n FROM units WHERE owner_id = ?").get(owner)).toEqual({ n: 0 });
    expect(internals().db.prepare("SELECT COUNT(*) AS n FROM lineages WHERE lineage_id = ?").get(lineage)).toEqual({ n: 0 });
    expect(fs.existsSync(path.join(t.dir, "blocks", `${lineage}.dat`))).toBe(false);
    expect(t.engine.check().problems).toEqual([]);
  });
});
