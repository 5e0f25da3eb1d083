/**
 * Management-operation latency in one engine: `count` encrypted disk creations, `count`
 * attachments (round-robin over instances), `count` snapshots (of an encrypted disk with
 * 1 MiB written), then listDisks() with `listDisks` disks in the engine (the others are
 * created plain, untimed, to fill it up).
 */
import { percentile, summarize, type Summary } from "./stats";
import { freshEngine, INSTANCE_TYPE, log, patternBuffer, timeMs, ZONE, MiB } from "./util";

export interface OpsOptions {
  count: number;
  listDisks: number;
  listReps: number;
  instances: number;
}

export interface OpsResult {
  options: OpsOptions;
  createDiskMs: { p50: number; p99: number; summary: Summary };
  attachMs: { p50: number; p99: number; summary: Summary };
  snapshotMs: { p50: number; p99: number; summary: Summary };
  listMs: Summary;
  listedDisks: number;
}

function lat(xs: number[]): { p50: number; p99: number; summary: Summary } {
  return { p50: percentile(xs, 50), p99: percentile(xs, 99), summary: summarize(xs) };
}

export function benchOps(base: string, opts: OpsOptions): OpsResult {
  const { engine } = freshEngine(base, "ops");
  try {
    const instances = Array.from({ length: opts.instances }, (_, i) => engine.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE, name: `ops-${i}` }).instanceId);
    const create: number[] = [];
    const disks: string[] = [];
    for (let i = 0; i < opts.count; i++) {
      create.push(timeMs(() => disks.push(engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true, name: `ops-${i}` }).diskId)));
    }
    log(`ops: ${opts.count} encrypted createDisk p50 ${percentile(create, 50).toFixed(2)} ms p99 ${percentile(create, 99).toFixed(2)} ms`);
    const attach: number[] = [];
    for (let i = 0; i < opts.count; i++) attach.push(timeMs(() => engine.attachDisk({ diskId: disks[i], instanceId: instances[i % instances.length] })));
    log(`ops: ${opts.count} attachDisk p50 ${percentile(attach, 50).toFixed(2)} ms p99 ${percentile(attach, 99).toFixed(2)} ms`);
    const src = engine.listAttachments({ diskId: disks[0] })[0];
    engine.write(src.attachmentId, 0, patternBuffer(MiB, 5));
    const snaps: number[] = [];
    for (let i = 0; i < opts.count; i++) snaps.push(timeMs(() => engine.createSnapshot({ diskId: disks[0], name: `ops-${i}` })));
    log(`ops: ${opts.count} createSnapshot p50 ${percentile(snaps, 50).toFixed(2)} ms p99 ${percentile(snaps, 99).toFixed(2)} ms`);
    let n = engine.listDisks().length;
    for (let i = n; i < opts.listDisks; i++) engine.createDisk({ zone: ZONE, sizeGb: 10, name: `fill-${i}` });
    const list: number[] = [];
    for (let r = 0; r < opts.listReps; r++) list.push(timeMs(() => (n = engine.listDisks().length)));
    log(`ops: listDisks with ${n} disks: median ${summarize(list).median.toFixed(1)} ms`);
    return { options: opts, createDiskMs: lat(create), attachMs: lat(attach), snapshotMs: lat(snaps), listMs: summarize(list), listedDisks: n };
  } finally {
    engine.close();
  }
}
