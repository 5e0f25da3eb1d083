/**
 * EncryptedDisk hooks. Rules of thumb:
 * - An omitted optional input keeps the disk's current value; a stated one is compared with
 *   the disk as it is (diff receives the old outputs, which hold the real values).
 * - Encryption never changes (L4, L5): refused at check when the old inputs show the old
 *   value, refused again in diff against the real value, and by the engine at update.
 * - Replacements only for zone, diskType, diskUsage and a *different* snapshotId,
 *   sourceDiskId or adoptDiskId.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ErrorCodes, Refusals } from "../../engine";
import { DISK_SIZE_LIMITS, LOCAL_DISK_TYPES } from "../../engine/types";
import type { Disk, DiskType, Engine } from "../../engine/types";
import { EncryptedDiskInputs, EncryptedDiskOutputs } from "../../schemas/encryptedDisk";
import { regionOfZone } from "../../engine";
import { engine, existingEngine } from "../context";
import { planDiskGrowth, planDiskReplacement } from "../plan";
import { compact, failureFrom, isNotFound, isUnknown, lookup, notice, passInputs, programInputs, ownedCreate, ownerOf, Props, refusal, same, validate } from "./common";

type In = EncryptedDiskInputs;
type Out = EncryptedDiskOutputs;

const DEFAULT_DISK_TYPE: DiskType = "CLOUD_PREMIUM";

function isEmpty(o: Props | undefined): boolean {
  return !o || Object.keys(o).filter((k) => k !== "__provider" && k !== "__owner").length === 0;
}

/** The L4/L5 refusal, naming the migration path (M1). */
export function conversionReason(wasEncrypted: boolean): string {
  return wasEncrypted
    ? "L5: an encrypted disk cannot be converted into a non-encrypted one (it would also not be replaced: that would destroy its data). " +
        "Keep `encrypt: true` here; to get the data onto a plain disk (M1), declare a new EncryptedDisk with `sourceDiskId` set to this disk's `diskId` and `encrypt: false`, then remove this one."
    : "L4: an existing non-encrypted disk cannot be converted into an encrypted one (it would also not be replaced: that would destroy its data). " +
        "Keep `encrypt: false` here; to encrypt the data (M1), declare a new EncryptedDisk with `sourceDiskId` set to this disk's `diskId` and `encrypt: true`, then remove this one.";
}

/** What a replacement of a disk holding data destroys, and how to keep the data. */
export function dataLossWarning(d: Disk, replaces: readonly string[]): string {
  const written = d.usedBytes >= 2 ** 20 ? `${(d.usedBytes / 2 ** 20).toFixed(1)} MiB` : d.usedBytes >= 1024 ? `${(d.usedBytes / 1024).toFixed(0)} KiB` : `${d.usedBytes} bytes`;
  return (
    `${d.diskId} will be REPLACED (${replaces.join(", ")} changed): the replacement is a new disk, and ${d.diskId} is deleted with the ${written} written to it. ` +
    `To keep the data, keep ${replaces.join(", ")} as it is and copy the disk first: declare a new EncryptedDisk with \`sourceDiskId: "${d.diskId}"\` (M1 migration, with the new ` +
    `${replaces.join(", ")}), or from a Snapshot of it with \`snapshotId\` (C2); move the Attachment to it, then remove this disk.`
  );
}

function shrinkReason(from: number, to: number): string {
  return `disks can only grow: ${to} GB is smaller than the disk's ${from} GB. Keep sizeGb >= ${from}.`;
}

function outs(d: Disk, stated: Props, e: Engine): Out {
  const att = d.attachmentId ? lookup(() => e.findAttachment(d.attachmentId as string)) : undefined;
  return compact({
    diskId: d.diskId,
    region: d.region,
    zone: d.zone,
    sizeGb: d.sizeGb,
    diskType: d.diskType,
    diskUsage: d.diskUsage,
    encrypted: d.encrypted,
    kmsKeyId: d.kmsKeyId,
    state: d.state,
    name: d.name,
    tags: d.tags ?? {},
    snapshotId: d.snapshotId,
    sourceDiskId: d.sourceDiskId,
    adoptDiskId: typeof stated.adoptDiskId === "string" ? stated.adoptDiskId : undefined,
    restoreSnapshotId: typeof stated.restoreSnapshotId === "string" ? stated.restoreSnapshotId : undefined,
    encrypt: typeof stated.encrypt === "boolean" ? stated.encrypt : undefined,
    attachmentId: d.attachmentId,
    instanceId: d.instanceId,
    reattachRequired: att?.reattachRequired ?? false,
    createdAt: d.createdAt,
  }) as Out;
}

/** Encryption the disk got when it was created from `olds` (undefined: can't tell here). */
function oldEncryption(olds: Props, e: Engine | undefined): boolean | undefined {
  if (typeof olds.encrypt === "boolean") return olds.encrypt;
  if (typeof olds.adoptDiskId === "string") return e ? lookup(() => e.findDisk(olds.adoptDiskId as string))?.encrypted : undefined;
  if (typeof olds.snapshotId === "string") return e ? lookup(() => e.findSnapshot(olds.snapshotId as string))?.encrypted : undefined;
  return true; // created with the default
}

/** Size the disk had from `olds` (undefined: can't tell here). */
function oldSize(olds: Props, e: Engine | undefined): number | undefined {
  if (typeof olds.sizeGb === "number") return olds.sizeGb;
  if (!e) return undefined;
  if (typeof olds.adoptDiskId === "string") return lookup(() => e.findDisk(olds.adoptDiskId as string))?.sizeGb;
  if (typeof olds.sourceDiskId === "string") return lookup(() => e.findDisk(olds.sourceDiskId as string))?.sizeGb;
  if (typeof olds.snapshotId === "string") return lookup(() => e.findSnapshot(olds.snapshotId as string))?.sizeGb;
  return undefined;
}

/** What prevents adopting `d` with the stated inputs `k`. */
function adoptionProblems(d: Disk, k: Partial<In>): pulumi.dynamic.CheckFailure[] {
  const f: pulumi.dynamic.CheckFailure[] = [];
  if (k.encrypt !== undefined && k.encrypt !== d.encrypted)
    f.push({ property: "encrypt", reason: `${d.encrypted ? "L5" : "L4"}: ${d.diskId} is ${d.encrypted ? "encrypted" : "not encrypted"} and cannot be converted; state encrypt: ${d.encrypted} (or omit it), or migrate its data with sourceDiskId (M1).` });
  if (k.zone !== undefined && k.zone !== d.zone) f.push({ property: "zone", reason: `${d.diskId} is in ${d.zone}, not ${k.zone}.` });
  if (k.diskType !== undefined && k.diskType !== d.diskType) f.push({ property: "diskType", reason: `${d.diskId} is ${d.diskType}, not ${k.diskType}.` });
  if (k.diskUsage !== undefined && k.diskUsage !== d.diskUsage) f.push({ property: "diskUsage", reason: `${d.diskId} is a ${d.diskUsage}, not ${k.diskUsage}.` });
  if (k.sizeGb !== undefined && k.sizeGb < d.sizeGb) f.push({ property: "sizeGb", reason: shrinkReason(d.sizeGb, k.sizeGb) });
  return f;
}

export const EncryptedDisk = {
  async check(olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
    const { known: k, failures: invalid } = validate(EncryptedDiskInputs, news);
    // K5/O3: there is no key to choose; say so rather than "unknown property".
    const failures = invalid.map((f) => (f.property === "kmsKeyId" ? { property: "kmsKeyId", reason: Refusals.cmkNotChoosable } : f));
    const stated = (key: string) => news[key] !== undefined && news[key] !== null;
    const creating = isEmpty(olds);
    const e = existingEngine();

    const origins = ["snapshotId", "sourceDiskId", "adoptDiskId"].filter(stated);
    if (origins.length > 1) failures.push({ property: origins[1], reason: `set at most one of snapshotId, sourceDiskId and adoptDiskId (got ${origins.join(", ")}).` });

    // Encryption the disk will have: stated; else for a new disk inherited from the snapshot
    // (C2) or the default (true); else the existing disk's. L2/L3 and the zone are checked for
    // existing disks too: a change of diskType, diskUsage or zone is a replacement.
    let willEncrypt: boolean | undefined = k.encrypt;
    if (willEncrypt === undefined && !stated("adoptDiskId")) {
      if (!creating) willEncrypt = oldEncryption(olds, e);
      else if (stated("snapshotId")) willEncrypt = k.snapshotId && e ? lookup(() => e.findSnapshot(k.snapshotId as string))?.encrypted : undefined;
      else willEncrypt = true;
    }
    const why = k.encrypt !== undefined ? "" : creating ? " (encrypt defaults to true: set encrypt: false for this disk)" : " (this disk is encrypted, and its replacement would be too)";
    if (willEncrypt === true && k.diskType !== undefined && (LOCAL_DISK_TYPES as readonly string[]).includes(k.diskType))
      failures.push({ property: "diskType", reason: `L2: only cloud disks can be encrypted, not local disks (${k.diskType})${why}.` });
    if (willEncrypt === true && k.diskUsage === "SYSTEM_DISK") failures.push({ property: "diskUsage", reason: `L3: only data disks can be encrypted, not system disks${why}.` });
    if (k.sizeGb !== undefined && k.diskUsage === "SYSTEM_DISK" && k.sizeGb > DISK_SIZE_LIMITS.SYSTEM_DISK.max)
      failures.push({ property: "sizeGb", reason: `a system disk holds at most ${DISK_SIZE_LIMITS.SYSTEM_DISK.max} GB.` });
    if (k.zone !== undefined) {
      try {
        regionOfZone(k.zone);
      } catch (err) {
        failures.push(failureFrom("zone", err));
      }
    }

    if (creating) {
      if (!stated("zone") && !stated("sourceDiskId") && !stated("adoptDiskId")) failures.push({ property: "zone", reason: "zone is required (unless sourceDiskId or adoptDiskId is set)." });
      if (!stated("sizeGb") && origins.length === 0) failures.push({ property: "sizeGb", reason: "sizeGb is required (unless snapshotId, sourceDiskId or adoptDiskId is set)." });
      if (stated("restoreSnapshotId"))
        failures.push({ property: "restoreSnapshotId", reason: "restoreSnapshotId rolls an existing disk back to one of its own snapshots; a new disk has none. To create a disk holding a snapshot's data, use snapshotId (C2)." });

      if (e) {
        if (k.snapshotId !== undefined) {
          const s = lookup(() => e.findSnapshot(k.snapshotId as string));
          if (!s) failures.push({ property: "snapshotId", reason: `snapshot ${k.snapshotId} does not exist.` });
          else if (k.sizeGb !== undefined && k.sizeGb < s.sizeGb) failures.push({ property: "sizeGb", reason: `a disk from ${s.snapshotId} needs at least ${s.sizeGb} GB.` });
          else if (k.encrypt === false && s.encrypted) failures.push({ property: "encrypt", reason: `S2: ${s.snapshotId} is encrypted; a disk created from it is encrypted too (C2). Omit encrypt or set it to true.` });
          else if (k.encrypt === true && !s.encrypted)
            failures.push({ property: "encrypt", reason: `S1: ${s.snapshotId} is not encrypted and its data cannot become encrypted data; omit encrypt (the disk will be plain), then migrate it to a new encrypted disk with sourceDiskId (M1).` });
        }
        if (k.sourceDiskId !== undefined) {
          const src = lookup(() => e.findDisk(k.sourceDiskId as string));
          if (!src) failures.push({ property: "sourceDiskId", reason: `disk ${k.sourceDiskId} does not exist.` });
          else if (k.sizeGb !== undefined && k.sizeGb < src.sizeGb) failures.push({ property: "sizeGb", reason: `a copy of ${src.diskId} needs at least ${src.sizeGb} GB.` });
        }
      }
    } else {
      // Encryption is fixed (L4, L5): refuse at preview, never replace.
      if (k.encrypt !== undefined) {
        const was = oldEncryption(olds, e);
        if (was !== undefined && was !== k.encrypt) failures.push({ property: "encrypt", reason: conversionReason(was) });
      }
      if (k.sizeGb !== undefined) {
        const from = oldSize(olds, e);
        if (from !== undefined && k.sizeGb < from) failures.push({ property: "sizeGb", reason: shrinkReason(from, k.sizeGb) });
      }
      if (k.restoreSnapshotId !== undefined && k.restoreSnapshotId !== olds.restoreSnapshotId && e) {
        const s = lookup(() => e.findSnapshot(k.restoreSnapshotId as string));
        if (!s) failures.push({ property: "restoreSnapshotId", reason: `snapshot ${k.restoreSnapshotId} does not exist.` });
        else {
          const d = lookup(() => e.findDisk(s.diskId));
          if (!d) failures.push({ property: "restoreSnapshotId", reason: `${s.snapshotId} was taken from ${s.diskId}, which no longer exists: a disk rolls back only to its own snapshots. Use snapshotId on a new disk instead.` });
          else if (d.attachmentId) failures.push({ property: "restoreSnapshotId", reason: `rolling back is refused while the disk is attached (${d.diskId} on ${d.instanceId}): remove its Attachment and run pulumi up first, then roll back.` });
        }
      }
    }
    if (k.adoptDiskId !== undefined && (creating || k.adoptDiskId !== olds.adoptDiskId) && e) {
      const d = lookup(() => e.findDisk(k.adoptDiskId as string));
      if (!d) failures.push({ property: "adoptDiskId", reason: `disk ${k.adoptDiskId} does not exist.` });
      else failures.push(...adoptionProblems(d, k));
    }
    return { inputs: passInputs(news, olds), failures };
  },

  /**
   * Never throws: the engine also calls diff during `pulumi refresh` (with the refreshed
   * outputs as olds and the old inputs as news), and a refresh must not fail. A change the
   * engine will refuse (check could not see it) is reported as a change with a notice saying
   * so; update then refuses it before changing anything.
   */
  async diff(id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    let changes = false;
    const stated = (key: string) => news[key] !== undefined && news[key] !== null;
    const differs = (key: string, old: unknown = olds[key]) => stated(key) && (isUnknown(news[key]) || !same(news[key], old));

    for (const key of ["zone", "diskType", "diskUsage", "snapshotId", "sourceDiskId", "adoptDiskId"]) if (differs(key)) replaces.push(key);

    if (stated("encrypt")) {
      if (isUnknown(news.encrypt)) changes = true;
      else if (news.encrypt !== olds.encrypted) {
        changes = true;
        await notice(`${id}: this change will be refused: ${conversionReason(olds.encrypted === true)}`, news);
      }
    }
    if (stated("sizeGb")) {
      if (isUnknown(news.sizeGb)) changes = true;
      else if (typeof olds.sizeGb === "number" && (news.sizeGb as number) < olds.sizeGb) {
        changes = true;
        await notice(`${id}: this change will be refused: ${shrinkReason(olds.sizeGb, news.sizeGb as number)}`, news);
      }
      else if (news.sizeGb !== olds.sizeGb) {
        changes = true;
        const d = lookup(() => existingEngine()?.findDisk(id));
        if (d?.attachmentId && replaces.length === 0) planDiskGrowth(id, news.sizeGb as number);
        if (d?.encrypted && d.attachmentId && replaces.length === 0)
          await notice(`L6: ${id} is encrypted and attached to ${d.instanceId}: after growing to ${String(news.sizeGb)} GB the instance sees the new size only after a detach and attach (replace its Attachment, e.g. by changing expectedCapacityGb).`, news);
      }
    }
    if (stated("restoreSnapshotId") && differs("restoreSnapshotId")) {
      changes = true;
      if (!isUnknown(news.restoreSnapshotId) && replaces.length === 0) {
        const s = lookup(() => existingEngine()?.findSnapshot(news.restoreSnapshotId as string));
        if (s && s.diskId !== id) await notice(`${id}: this change will be refused: ${s.snapshotId} was taken from ${s.diskId}, not from ${id}; a disk rolls back only to its own snapshots.`, news);
      }
    }
    // Forgetting the last rollback clears the record, so the same snapshot can be applied again later.
    if (!stated("restoreSnapshotId") && olds.restoreSnapshotId !== undefined) changes = true;
    if (differs("name") || differs("tags")) changes = true;

    if (replaces.length > 0) {
      const d = lookup(() => existingEngine()?.findDisk(id));
      // A zone change the disk's attachment must follow: dependents check it (plan.ts).
      if (d && replaces.includes("zone") && typeof news.zone === "string" && !isUnknown(news.zone)) planDiskReplacement(id, d.zone, news.zone);
      // P-rules: nobody loses data without being told.
      if (d && d.usedBytes > 0) await notice(dataLossWarning(d, replaces), news);
    }
    return { changes: changes || replaces.length > 0, replaces, deleteBeforeReplace: false };
  },

  async create(news: Props): Promise<pulumi.dynamic.CreateResult> {
    const k = EncryptedDiskInputs.parse(programInputs(news));
    const e = engine();
    let d: Disk;
    if (k.adoptDiskId !== undefined) {
      d = e.getDisk(k.adoptDiskId);
      const problems = adoptionProblems(d, k);
      if (problems.length > 0) throw refusal(ErrorCodes.InvalidParameter, undefined, `cannot adopt ${d.diskId}: ${problems.map((p) => `${p.property}: ${p.reason}`).join(" ")}`);
      if (k.sizeGb !== undefined && k.sizeGb > d.sizeGb) d = e.resizeDisk(d.diskId, k.sizeGb);
      if ((k.name !== undefined && k.name !== d.name) || (k.tags !== undefined && !same(k.tags, d.tags))) d = e.renameDisk(d.diskId, k.name ?? d.name, k.tags ?? d.tags);
    } else if (k.sourceDiskId !== undefined) {
      // A migration commits in several transactions (the copy is chunked): the engine tags the
      // new disk with its owner in the first, so a migration killed mid-copy is still found.
      d = e.migrateDisk({
        sourceDiskId: k.sourceDiskId,
        encrypt: k.encrypt ?? true,
        ...(k.zone !== undefined ? { zone: k.zone } : {}),
        ...(k.diskType !== undefined ? { diskType: k.diskType } : {}),
        ...(k.sizeGb !== undefined ? { sizeGb: k.sizeGb } : {}),
        ...(k.name !== undefined ? { name: k.name } : {}),
        ...(k.tags !== undefined ? { tags: k.tags } : {}),
        ...(ownerOf(news) !== undefined ? { owner: ownerOf(news) } : {}),
      });
    } else {
      const snap = k.snapshotId !== undefined ? e.getSnapshot(k.snapshotId) : undefined;
      d = ownedCreate(e, news, () => e.createDisk({
        zone: k.zone as string,
        sizeGb: k.sizeGb ?? (snap as { sizeGb: number }).sizeGb,
        diskType: k.diskType ?? DEFAULT_DISK_TYPE,
        diskUsage: k.diskUsage ?? "DATA_DISK",
        // Omitted with a snapshot: inherited (C2). Omitted otherwise: encrypted.
        ...(k.encrypt !== undefined ? { encrypt: k.encrypt } : snap ? {} : { encrypt: true }),
        ...(k.snapshotId !== undefined ? { snapshotId: k.snapshotId } : {}),
        ...(k.name !== undefined ? { name: k.name } : {}),
        ...(k.tags !== undefined ? { tags: k.tags } : {}),
      }), (x) => x.diskId);
    }
    return { id: d.diskId, outs: outs(d, k, e) };
  },

  async read(id: string, props: Props): Promise<pulumi.dynamic.ReadResult> {
    const e = engine();
    const d = lookup(() => e.findDisk(id));
    if (!d) return {}; // deleted outside Pulumi: refresh drops it from the state
    return { id, props: outs(d, props ?? {}, e) };
  },

  async update(id: string, olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
    const k = EncryptedDiskInputs.parse(programInputs(news));
    const e = engine();
    let d = e.getDisk(id);
    // Refusals first, so a refused update changes nothing. The engine's own refusal (L4/L5)
    // is the last line behind check.
    if (k.encrypt !== undefined && k.encrypt !== d.encrypted) e.setDiskEncryption(id, k.encrypt);
    if (k.sizeGb !== undefined && k.sizeGb < d.sizeGb) throw refusal(ErrorCodes.DiskShrink, undefined, shrinkReason(d.sizeGb, k.sizeGb));
    if (k.restoreSnapshotId !== undefined && k.restoreSnapshotId !== olds.restoreSnapshotId) d = e.applySnapshot(k.restoreSnapshotId, id);
    if (k.sizeGb !== undefined && k.sizeGb !== d.sizeGb) {
      d = e.resizeDisk(id, k.sizeGb);
      if (d.encrypted && d.attachmentId)
        await notice(`L6: ${id} grew to ${d.sizeGb} GB while attached to ${d.instanceId}: the instance sees the new size only after a detach and attach.`, news);
    }
    if ((k.name !== undefined && k.name !== d.name) || (k.tags !== undefined && !same(k.tags, d.tags))) d = e.renameDisk(id, k.name ?? d.name, k.tags ?? d.tags);
    return { outs: outs(d, k, e) };
  },

  async delete(id: string): Promise<void> {
    try {
      engine().deleteDisk(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};
