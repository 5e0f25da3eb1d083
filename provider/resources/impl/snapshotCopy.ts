/** SnapshotCopy hooks: a snapshot copied to another region; refused for encrypted snapshots (S4). */
import type * as pulumi from "@pulumi/pulumi";
import { ErrorCodes } from "../../engine";
import type { Snapshot as EngineSnapshot } from "../../engine/types";
import { SnapshotCopyInputs, SnapshotCopyOutputs } from "../../schemas/snapshotCopy";
import { assertRegion } from "../../engine";
import { engine, existingEngine } from "../context";
import { plannedSnapshotRegion } from "../plan";
import { failureFrom, isNotFound, isUnknown, lookup, passInputs, programInputs, ownerOf, Props, refusal, same, validate } from "./common";

const S4_REASON = "S4: encrypted snapshots cannot be copied across regions. Copy only snapshots of non-encrypted disks; an encrypted disk's data stays in its region.";

function outs(s: EngineSnapshot, stated: Props): SnapshotCopyOutputs {
  return {
    snapshotId: s.snapshotId,
    sourceSnapshotId: s.copiedFromSnapshotId ?? String(stated.sourceSnapshotId),
    destinationRegion: typeof stated.destinationRegion === "string" ? stated.destinationRegion : s.region,
    name: s.name,
    region: s.region,
    encrypted: s.encrypted,
    sizeGb: s.sizeGb,
    state: s.state,
    createdAt: s.createdAt,
  };
}

export const SnapshotCopy = {
  async check(olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
    const { known: k, failures } = validate(SnapshotCopyInputs, news);
    const e = existingEngine();
    // The source is replaced with its disk into another region (plan.ts): a copy into that very region cannot be made.
    const moved = isUnknown(news.sourceSnapshotId) && typeof olds?.sourceSnapshotId === "string" ? plannedSnapshotRegion(olds.sourceSnapshotId) : undefined;
    if (moved && k.destinationRegion === moved.to)
      failures.push({
        property: "destinationRegion",
        reason: `${olds.sourceSnapshotId} would be replaced by a snapshot in ${moved.to} (its disk moves there), which is this copy's destinationRegion: a snapshot is copied only to another region. Keep the disk's zone, or change destinationRegion.`,
      });
    if (e && k.sourceSnapshotId !== undefined) {
      const s = lookup(() => e.findSnapshot(k.sourceSnapshotId as string));
      if (!s) failures.push({ property: "sourceSnapshotId", reason: `snapshot ${k.sourceSnapshotId} does not exist.` });
      else if (s.encrypted) failures.push({ property: "sourceSnapshotId", reason: S4_REASON });
      else if (k.destinationRegion !== undefined && k.destinationRegion === s.region)
        failures.push({ property: "destinationRegion", reason: `${s.snapshotId} is already in ${s.region}; choose another region.` });
    }
    if (k.destinationRegion !== undefined) {
      try {
        assertRegion(k.destinationRegion, "destinationRegion");
      } catch (err) {
        failures.push(failureFrom("destinationRegion", err));
      }
    }
    return { inputs: passInputs(news, olds), failures };
  },

  async diff(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    for (const key of ["sourceSnapshotId", "destinationRegion", "name"])
      if (news[key] !== undefined && (isUnknown(news[key]) || !same(news[key], olds[key]))) replaces.push(key);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },

  async create(news: Props): Promise<pulumi.dynamic.CreateResult> {
    const k = SnapshotCopyInputs.parse(programInputs(news));
    const e = engine();
    if (e.getSnapshot(k.sourceSnapshotId).encrypted) throw refusal(ErrorCodes.EncryptedCrossRegionCopy, "S4", S4_REASON.slice(4));
    // A copy runs several short transactions (D3): the engine tags it with its owner when it publishes it.
    const owner = ownerOf(news);
    const s = e.copySnapshot({ snapshotId: k.sourceSnapshotId, destinationRegion: k.destinationRegion, ...(k.name !== undefined ? { name: k.name } : {}), ...(owner !== undefined ? { owner } : {}) });
    return { id: s.snapshotId, outs: outs(s, k) };
  },

  async read(id: string, props: Props): Promise<pulumi.dynamic.ReadResult> {
    const s = lookup(() => engine().findSnapshot(id));
    if (!s) return {};
    return { id, props: outs(s, props ?? {}) };
  },

  async update(id: string, _olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: outs(engine().getSnapshot(id), news) };
  },

  async delete(id: string): Promise<void> {
    try {
      engine().deleteSnapshot(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};
