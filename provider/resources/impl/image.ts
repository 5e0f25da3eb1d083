/**
 * Image hooks. S3 (no sharing of images with encrypted snapshots) and S4 (no cross-region
 * copy of them) are refused at check when the snapshots or source image are already known,
 * otherwise in create before the engine changes anything.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ErrorCodes } from "../../engine";
import type { Engine, Image as EngineImage } from "../../engine/types";
import { ImageInputs, ImageOutputs } from "../../schemas/image";
import { engine, existingEngine } from "../context";
import { plannedSnapshotRegion } from "../plan";
import { compact, isNotFound, isUnknown, lookup, passInputs, programInputs, ownedCreate, ownerOf, Props, refusal, same, validate } from "./common";

const S3_REASON = "S3: an image that contains encrypted snapshots cannot be shared. Remove sharedWith, or build the image from snapshots of non-encrypted disks.";
const S4_REASON = "S4: images created from encrypted snapshots cannot be copied across regions. Create the image in the destination region from snapshots there instead.";

function outs(i: EngineImage, stated: Props): ImageOutputs {
  return compact({
    imageId: i.imageId,
    name: i.name,
    region: i.region,
    snapshotIds: i.snapshotIds,
    sourceImageId: i.copiedFromImageId,
    destinationRegion: typeof stated.destinationRegion === "string" ? stated.destinationRegion : undefined,
    encrypted: i.encrypted,
    sharedWith: i.sharedWith,
    createdAt: i.createdAt,
  }) as ImageOutputs;
}

/** Whether the image made from these snapshots would be encrypted (undefined: not all known). */
function snapshotsEncrypted(e: Engine, ids: readonly string[]): boolean | undefined {
  let any = false;
  for (const id of ids) {
    const s = lookup(() => e.findSnapshot(id));
    if (!s) return undefined;
    any ||= s.encrypted;
  }
  return any;
}

export const Image = {
  async check(olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
    const { known: k, failures } = validate(ImageInputs, news);
    // Some of its snapshots are replaced with their disks into another region (plan.ts): an
    // image holds snapshots of one region only, so the replacement image could not be made.
    const e0 = existingEngine();
    if (e0 && Array.isArray(news.snapshotIds) && Array.isArray(olds?.snapshotIds) && news.snapshotIds.some(isUnknown)) {
      const regions = new Set<string>();
      for (const [n, v] of news.snapshotIds.entries()) {
        const old = (olds.snapshotIds as unknown[])[n];
        if (isUnknown(v)) {
          const moved = typeof old === "string" ? plannedSnapshotRegion(old) : undefined;
          if (!moved) { regions.clear(); break; } // unknown for another reason: cannot tell
          regions.add(moved.to);
        } else if (typeof v === "string") {
          const s = lookup(() => e0.findSnapshot(v));
          if (s) regions.add(s.region);
        }
      }
      if (regions.size > 1)
        failures.push({ property: "snapshotIds", reason: `its snapshots would be replaced in other regions (their disks move): the new image would hold snapshots of ${[...regions].sort().join(" and ")}, and an image holds snapshots of one region only. Keep the disks' zones in one region, or build one image per region.` });
    }
    const stated = (key: string) => news[key] !== undefined && news[key] !== null;
    if (stated("snapshotIds") === stated("sourceImageId")) failures.push({ property: "snapshotIds", reason: "set exactly one of snapshotIds (a new image) and sourceImageId (a copy)." });
    if (stated("sourceImageId") && !stated("destinationRegion")) failures.push({ property: "destinationRegion", reason: "destinationRegion is required with sourceImageId." });
    if (stated("destinationRegion") && !stated("sourceImageId")) failures.push({ property: "destinationRegion", reason: "destinationRegion applies only to a copy (sourceImageId)." });
    const e = existingEngine();
    if (e) {
      let encrypted: boolean | undefined;
      if (k.snapshotIds !== undefined) {
        for (const [n, id] of k.snapshotIds.entries()) if (!lookup(() => e.findSnapshot(id))) failures.push({ property: `snapshotIds[${n}]`, reason: `snapshot ${id} does not exist.` });
        encrypted = snapshotsEncrypted(e, k.snapshotIds);
      }
      if (k.sourceImageId !== undefined) {
        const src = lookup(() => e.findImage(k.sourceImageId as string));
        if (!src) failures.push({ property: "sourceImageId", reason: `image ${k.sourceImageId} does not exist.` });
        else {
          encrypted = src.encrypted;
          if (src.encrypted) failures.push({ property: "sourceImageId", reason: S4_REASON });
        }
      }
      if (encrypted && k.sharedWith !== undefined && k.sharedWith.length > 0) failures.push({ property: "sharedWith", reason: S3_REASON });
    }
    return { inputs: passInputs(news), failures };
  },

  async diff(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    for (const key of ["name", "snapshotIds", "sourceImageId", "destinationRegion"])
      if (news[key] !== undefined && (isUnknown(news[key]) || !same(news[key], olds[key]))) replaces.push(key);
    // Sharing only adds accounts: withdrawing one needs a new image.
    const wantShared = news.sharedWith ?? [];
    const hadShared = (olds.sharedWith as string[] | undefined) ?? [];
    if (!isUnknown(wantShared) && hadShared.some((a) => !(wantShared as string[]).includes(a))) replaces.push("sharedWith");
    const changes = replaces.length > 0 || isUnknown(wantShared) || !same([...(wantShared as string[])].sort(), [...hadShared].sort());
    return { changes, replaces, deleteBeforeReplace: false };
  },

  async create(news: Props): Promise<pulumi.dynamic.CreateResult> {
    const k = ImageInputs.parse(programInputs(news));
    const e = engine();
    const sharing = k.sharedWith !== undefined && k.sharedWith.length > 0;
    let img: EngineImage;
    if (k.sourceImageId !== undefined) {
      const src = e.getImage(k.sourceImageId);
      if (src.encrypted) throw refusal(ErrorCodes.EncryptedCrossRegionCopy, "S4", S4_REASON.slice(4));
      if (sharing) throw refusal(ErrorCodes.EncryptedImageShare, "S3", S3_REASON.slice(4));
      // A copy runs several short transactions (D3): the engine tags it with its owner when it publishes it.
      const owner = ownerOf(news);
      img = e.copyImage({ imageId: k.sourceImageId as string, destinationRegion: k.destinationRegion as string, name: k.name, ...(owner !== undefined ? { owner } : {}) });
    } else {
      const ids = k.snapshotIds ?? [];
      // Refuse before creating anything: a half-made, unshareable image helps nobody.
      if (sharing && ids.some((id) => e.getSnapshot(id).encrypted)) throw refusal(ErrorCodes.EncryptedImageShare, "S3", S3_REASON.slice(4));
      img = ownedCreate(e, news, () => e.createImage({ name: k.name, snapshotIds: ids }), (x) => x.imageId);
    }
    if (sharing) img = e.shareImage(img.imageId, k.sharedWith as string[]);
    return { id: img.imageId, outs: outs(img, k) };
  },

  async read(id: string, props: Props): Promise<pulumi.dynamic.ReadResult> {
    const i = lookup(() => engine().findImage(id));
    if (!i) return {};
    return { id, props: outs(i, props ?? {}) };
  },

  async update(id: string, _olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
    const k = ImageInputs.parse(programInputs(news));
    const e = engine();
    let img = e.getImage(id);
    const add = (k.sharedWith ?? []).filter((a) => !img.sharedWith.includes(a));
    if (add.length > 0) {
      if (img.encrypted) throw refusal(ErrorCodes.EncryptedImageShare, "S3", S3_REASON.slice(4));
      img = e.shareImage(id, add);
    }
    return { outs: outs(img, k) };
  },

  async delete(id: string): Promise<void> {
    try {
      engine().deleteImage(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};
