/** Snapshot hooks. A snapshot's encryption is inherited from its disk and never changes (S1, S2). */
import type * as pulumi from "@pulumi/pulumi";
import { ErrorCodes } from "../../engine";
import type { Engine, Snapshot as EngineSnapshot } from "../../engine/types";
import { SnapshotInputs, SnapshotOutputs } from "../../schemas/snapshot";
import { engine, existingEngine } from "../context";
import { regionOfZone } from "../../engine";
import { plannedDiskZone, planSnapshotReplacement } from "../plan";
import { compact, isNotFound, isUnknown, lookup, notice, passInputs, programInputs, ownedCreate, Props, refusal, same, validate } from "./common";

export function snapshotConversionReason(isEncrypted: boolean): string {
  return isEncrypted
    ? "S2: an encrypted snapshot cannot be converted into a non-encrypted one; a snapshot of an encrypted disk is always encrypted. Omit encrypt or set it to true."
    : "S1: a snapshot of a non-encrypted disk cannot be converted into an encrypted snapshot. Omit encrypt or set it to false; to get encrypted snapshots, migrate the disk to an encrypted one first (EncryptedDisk with sourceDiskId, M1).";
}

function outs(s: EngineSnapshot, stated: Props): SnapshotOutputs {
  return compact({
    snapshotId: s.snapshotId,
    diskId: s.diskId,
    name: s.name,
    zone: s.zone,
    region: s.region,
    encrypted: s.encrypted,
    encrypt: typeof stated.encrypt === "boolean" ? stated.encrypt : undefined,
    kmsKeyId: s.kmsKeyId,
    sizeGb: s.sizeGb,
    state: s.state,
    createdAt: s.createdAt,
  }) as SnapshotOutputs;
}

function diskEncryption(e: Engine | undefined, diskId: unknown): boolean | undefined {
  if (!e || typeof diskId !== "string") return undefined;
  return lookup(() => e.findDisk(diskId))?.encrypted;
}

export const Snapshot = {
  async check(olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
    const { known: k, failures } = validate(SnapshotInputs, news);
    const e = existingEngine();
    if (k.diskId !== undefined && e && !lookup(() => e.findDisk(k.diskId as string))) failures.push({ property: "diskId", reason: `disk ${k.diskId} does not exist.` });
    if (k.encrypt !== undefined) {
      // The disk the snapshot is (or will be) taken from decides its encryption.
      const fromDisk = diskEncryption(e, k.diskId ?? olds?.diskId);
      const was = typeof olds?.encrypt === "boolean" ? olds.encrypt : fromDisk;
      if (was !== undefined && was !== k.encrypt) failures.push({ property: "encrypt", reason: snapshotConversionReason(was) });
    }
    return { inputs: passInputs(news, olds), failures };
  },

  async diff(id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    for (const key of ["diskId", "name"]) if (news[key] !== undefined && (isUnknown(news[key]) || !same(news[key], olds[key]))) replaces.push(key);
    let changes = replaces.length > 0;
    // Replaced with its disk, which moves to another region: Images and SnapshotCopies of it check that (plan.ts).
    const moved = isUnknown(news.diskId) && typeof olds.diskId === "string" ? plannedDiskZone(olds.diskId) : undefined;
    if (moved && typeof olds.region === "string" && regionOfZone(moved.to) !== olds.region) planSnapshotReplacement(id, olds.region, regionOfZone(moved.to));
    // Never throws (diff also runs during refresh): update refuses through the engine.
    if (news.encrypt !== undefined && !isUnknown(news.encrypt) && replaces.length === 0 && news.encrypt !== olds.encrypted)
      await notice(`${String(olds.snapshotId)}: this change will be refused: ${snapshotConversionReason(olds.encrypted === true)}`, news);
    if (news.encrypt !== olds.encrypt) changes = true; // the recorded assertion changes, nothing else
    return { changes, replaces, deleteBeforeReplace: false };
  },

  async create(news: Props): Promise<pulumi.dynamic.CreateResult> {
    const k = SnapshotInputs.parse(programInputs(news));
    const e = engine();
    const d = e.getDisk(k.diskId);
    if (k.encrypt !== undefined && k.encrypt !== d.encrypted) throw refusal(ErrorCodes.SnapshotEncryptConversion, d.encrypted ? "S2" : "S1", snapshotConversionReason(d.encrypted).slice(4));
    const s = ownedCreate(e, news, () => e.createSnapshot({ diskId: k.diskId, ...(k.name !== undefined ? { name: k.name } : {}) }), (x) => x.snapshotId);
    return { id: s.snapshotId, outs: outs(s, k) };
  },

  async read(id: string, props: Props): Promise<pulumi.dynamic.ReadResult> {
    const s = lookup(() => engine().findSnapshot(id));
    if (!s) return {};
    return { id, props: outs(s, props ?? {}) };
  },

  async update(id: string, _olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
    const k = SnapshotInputs.parse(programInputs(news));
    const e = engine();
    const s = e.getSnapshot(id);
    if (k.encrypt !== undefined && k.encrypt !== s.encrypted) e.setSnapshotEncryption(id, k.encrypt);
    return { outs: outs(s, k) };
  },

  async delete(id: string): Promise<void> {
    try {
      engine().deleteSnapshot(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};
