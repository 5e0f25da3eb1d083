/**
 * What this deployment plans for resources that others depend on, as the provider's own hooks
 * saw it. Pulumi runs one dynamic-provider host per deployment and registers a resource only
 * after the resources it depends on have been diffed, so a dependent's `check` can consult what
 * its dependency's `diff` decided even though the dependency's new id is still unknown there
 * (a replaced disk's `diskId` is unknown at preview).
 *
 * Today: the zone a replaced disk will have (an attachment that stays cannot follow it: C1),
 * the region a snapshot replaced with its disk will have (an Image mixes regions, a
 * SnapshotCopy's destination becomes its own region), and the size an attached disk grows to
 * (its attachment's outputs change with it: L6).
 */
const replacedSnapshotRegions = new Map<string, { from: string; to: string }>();

/** The snapshot `snapshotId` is replaced by one taken in region `to`. */
export function planSnapshotReplacement(snapshotId: string, from: string, to: string): void {
  replacedSnapshotRegions.set(snapshotId, { from, to });
}

/** The region change planned for `snapshotId` in this deployment, if any. */
export function plannedSnapshotRegion(snapshotId: string): { from: string; to: string } | undefined {
  return replacedSnapshotRegions.get(snapshotId);
}
const replacedDiskZones = new Map<string, { from: string; to: string }>();
const grownDisks = new Map<string, number>();

/** The attached disk `diskId` grows to `sizeGb` in this deployment. */
export function planDiskGrowth(diskId: string, sizeGb: number): void {
  grownDisks.set(diskId, sizeGb);
}

/** The size `diskId` grows to in this deployment, if it does. */
export function plannedDiskSize(diskId: string): number | undefined {
  return grownDisks.get(diskId);
}

/** The disk `diskId` is being replaced and its replacement lives in zone `to`. */
export function planDiskReplacement(diskId: string, from: string, to: string): void {
  replacedDiskZones.set(diskId, { from, to });
}

/** The zone change planned for `diskId` in this deployment, if any. */
export function plannedDiskZone(diskId: string): { from: string; to: string } | undefined {
  return replacedDiskZones.get(diskId);
}
