/**
 * Attachment hooks. Every change replaces the attachment with delete-before-replace: a disk
 * sits on one instance at a time, so the old attachment must go before the new one is made.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { Attachment as EngineAttachment, Engine } from "../../engine/types";
import { AttachmentInputs, AttachmentOutputs } from "../../schemas/attachment";
import { engine, existingEngine } from "../context";
import { plannedDiskSize, plannedDiskZone } from "../plan";
import { compact, isNotFound, isUnknown, lookup, passInputs, programInputs, ownedCreate, ownerOf, Props, same, validate } from "./common";

function outs(a: EngineAttachment, stated: Props): AttachmentOutputs {
  return compact({
    attachmentId: a.attachmentId,
    diskId: a.diskId,
    instanceId: a.instanceId,
    expectedCapacityGb: typeof stated.expectedCapacityGb === "number" ? stated.expectedCapacityGb : undefined,
    zone: a.zone,
    encrypted: a.encrypted,
    capacityGb: a.capacityGb,
    capacityBytes: a.capacityBytes,
    diskSizeGb: a.diskSizeGb,
    reattachRequired: a.reattachRequired,
    attachedAt: a.attachedAt,
    endpoint: a.endpoint,
    pskIdentity: a.pskIdentity,
    pskFile: a.pskFile,
  }) as AttachmentOutputs;
}

/** True when `attachmentId` was made by this very resource (its owner tag is the URN in `news`). */
function isOwnAttachment(e: Engine, attachmentId: string | null | undefined, news: Props): boolean {
  const owner = ownerOf(news);
  if (!attachmentId || owner === undefined) return false;
  return e.listOwned(owner).some((o) => o.resourceId === attachmentId && o.owner === owner);
}

export const Attachment = {
  async check(olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
    const { known: k, failures } = validate(AttachmentInputs, news);
    const e = existingEngine();
    // The disk is being replaced (its id is unknown until then) in another zone, and this
    // attachment stays on a known instance: the replacement could never be attached there (C1),
    // and an up would make the new disk and then fail. Refuse now, before anything changes.
    if (e && isUnknown(news.diskId) && typeof olds?.diskId === "string" && k.instanceId !== undefined) {
      const planned = plannedDiskZone(olds.diskId);
      const i = planned ? lookup(() => e.findInstance(k.instanceId as string)) : undefined;
      if (planned && i && i.zone !== planned.to)
        failures.push({
          property: "diskId",
          reason:
            `C1: ${olds.diskId} would be replaced by a disk in ${planned.to} (its zone changes from ${planned.from}), but this attachment keeps it on ${i.instanceId} in ${i.zone}, ` +
            `and a disk attaches only to an instance of its own zone. Keep the disk's zone, or attach it to an instance in ${planned.to} in the same change ` +
            `(to move the data, migrate it to a new disk in ${planned.to} with sourceDiskId, M1).`,
        });
    }
    if (e && k.diskId !== undefined && k.instanceId !== undefined) {
      const d = lookup(() => e.findDisk(k.diskId as string));
      const i = lookup(() => e.findInstance(k.instanceId as string));
      if (!d) failures.push({ property: "diskId", reason: `disk ${k.diskId} does not exist.` });
      if (!i) failures.push({ property: "instanceId", reason: `instance ${k.instanceId} does not exist.` });
      if (d && i) {
        if (d.zone !== i.zone) failures.push({ property: "instanceId", reason: `C1: ${d.diskId} is in ${d.zone} and attaches only to instances of that zone; ${i.instanceId} is in ${i.zone}.` });
        if (d.encrypted && i.localStorage) failures.push({ property: "instanceId", reason: `L7: ${d.diskId} is encrypted and cannot be attached to ${i.instanceId}, which has local storage. Attach it to an instance without local storage.` });
        // Attached elsewhere, and not by this very attachment (which a replacement detaches first).
        // Pulumi calls check again without the old inputs when it plans a replacement, so the
        // old inputs cannot be the only witness: the attachment's owner tag (this resource's URN) is.
        const ours = (olds?.diskId === d.diskId && olds?.instanceId === d.instanceId) || isOwnAttachment(e, d.attachmentId, news);
        if (d.attachmentId && !ours && d.instanceId !== i.instanceId)
          failures.push({ property: "diskId", reason: `${d.diskId} is already attached to ${d.instanceId}; a disk sits on one instance at a time. Remove that attachment first.` });
        // expectedCapacityGb is not compared with the disk here: in the same update the disk may
        // grow first (that is the point of changing it).
      }
    }
    return { inputs: passInputs(news), failures };
  },

  async diff(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    for (const key of ["diskId", "instanceId"]) if (isUnknown(news[key]) || !same(news[key], olds[key])) replaces.push(key);
    // A stated capacity that changes re-attaches (L6); dropping the input changes nothing.
    if (news.expectedCapacityGb !== undefined && (isUnknown(news.expectedCapacityGb) || news.expectedCapacityGb !== olds.expectedCapacityGb)) replaces.push("expectedCapacityGb");
    // The disk grows in this deployment (its diff ran first): the attachment's outputs change
    // with it (diskSizeGb, and reattachRequired for an encrypted disk, L6), so it is updated
    // after the disk and its outputs are true right after this up, not only after a refresh.
    const grows = typeof olds.diskId === "string" ? plannedDiskSize(olds.diskId) : undefined;
    const outputsChange = grows !== undefined && grows !== olds.diskSizeGb;
    return { changes: replaces.length > 0 || outputsChange, replaces, deleteBeforeReplace: replaces.length > 0 };
  },

  async create(news: Props): Promise<pulumi.dynamic.CreateResult> {
    const k = AttachmentInputs.parse(programInputs(news));
    const e = engine();
    const a = ownedCreate(e, news, () => e.attachDisk({ diskId: k.diskId, instanceId: k.instanceId }), (x) => x.attachmentId);
    return { id: a.attachmentId, outs: outs(a, k) };
  },

  async read(id: string, props: Props): Promise<pulumi.dynamic.ReadResult> {
    const a = lookup(() => engine().findAttachment(id));
    if (!a) return {};
    return { id, props: outs(a, props ?? {}) };
  },

  async update(id: string, _olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: outs(engine().getAttachment(id), news) };
  },

  async delete(id: string): Promise<void> {
    try {
      engine().detachDisk(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};
