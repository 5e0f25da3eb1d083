/**
 * Crash-injection worker: runs one kind of engine operation in a loop, journaling each
 * operation's begin and acknowledgement, until the harness SIGKILLs it. Usage (from dist/):
 *   node dist/scripts/chaos/crash-worker.js '<json config>'
 */
import { isEngineError, openEngine, type Engine } from "../../provider/engine";
import { Journal, pattern, rng, ZONE } from "./common";

export type CrashKind = "create" | "attach" | "write-small" | "write-large" | "snapshot" | "rollback" | "migrate" | "delete";

export interface WorkerConfig {
  dir: string;
  kmsRootKeyFile: string;
  kind: CrashKind;
  seed: number;
  round: number;
  journal: string;
  setup: Setup;
  /** Stop (exit 0) after this many operations: bounds state growth when a kill comes late. */
  maxOps: number;
}

export interface Setup {
  instanceId: string;
  disks: string[];
  attachments: string[];
  snapshotId?: string;
  /** write kinds: the byte ranges ("slots") writes go to, and which attachment each uses. */
  slots?: { att: number; offset: number; length: number }[];
  /** delete: what the harness prepared for this round (a disk with data, its snapshot, a clone). */
  groups?: { disk: string; snap: string; clone: string }[];
}

function main(): void {
  const cfg = JSON.parse(process.argv[2]) as WorkerConfig;
  const e = openEngine({ dir: cfg.dir, kmsRootKeyFile: cfg.kmsRootKeyFile });
  const j = new Journal(cfg.journal);
  const rand = rng(cfg.seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  let i = 0;
  const op = <T>(entry: Record<string, unknown>, fn: () => T, ack: (r: T) => Record<string, unknown> = () => ({})): T => {
    const n = i++;
    j.log({ t: "b", i: n, ...entry });
    const r = fn();
    j.log({ t: "a", i: n, ...ack(r) });
    return r;
  };
  const tok = (n: number) => `r${cfg.round}-s${cfg.seed}-${n}`;
  process.stdout.write("ready\n");
  const s = cfg.setup;
  // Never outlive the harness: stop when orphaned or after a minute.
  const ppid = process.ppid;
  const hardStop = Date.now() + 60_000;
  for (let k = 0; k < cfg.maxOps; k++) {
    if (process.ppid !== ppid || Date.now() > hardStop) break;
    switch (cfg.kind) {
      case "create": {
        const token = tok(k);
        const encrypt = k % 2 === 0;
        op({ op: "create", token, encrypt }, () => e.createDisk({ zone: ZONE, sizeGb: 10, encrypt, clientToken: token, name: token }), (d) => ({ diskId: d.diskId }));
        break;
      }
      case "attach": {
        const diskId = s.disks[k % s.disks.length];
        const att = e.listAttachments({ diskId })[0];
        if (att) op({ op: "detach", diskId }, () => e.detachDisk(att.attachmentId));
        else op({ op: "attach", diskId }, () => e.attachDisk({ diskId, instanceId: s.instanceId }), (a) => ({ attachmentId: a.attachmentId }));
        break;
      }
      case "write-small":
      case "write-large": {
        const slots = s.slots as NonNullable<Setup["slots"]>;
        const slot = Math.floor(rand() * slots.length);
        const sl = slots[slot];
        const gen = `${cfg.round}.${k}`;
        op({ op: "write", slot, gen }, () => e.write(s.attachments[sl.att], sl.offset, pattern(gen, sl.length)));
        if (k % 20 === 19) op({ op: "flush" }, () => e.flush(s.attachments[sl.att]));
        break;
      }
      case "snapshot": {
        const gen = `${cfg.round}.${k}`;
        op({ op: "write", gen }, () => e.write(s.attachments[0], 1000, pattern(gen, 200_000)));
        const token = tok(k);
        op({ op: "snapshot", token, gen }, () => e.createSnapshot({ diskId: s.disks[0], clientToken: token }), (x) => ({ snapshotId: x.snapshotId }));
        const snaps = e.listSnapshots({ diskId: s.disks[0] });
        if (snaps.length > 3) op({ op: "deleteSnapshot", snapshotId: snaps[0].snapshotId }, () => e.deleteSnapshot(snaps[0].snapshotId));
        break;
      }
      case "rollback": {
        const diskId = s.disks[0];
        const gen = `${cfg.round}.${k}`;
        op({ op: "write", gen }, () => {
          const a = e.attachDisk({ diskId, instanceId: s.instanceId });
          e.write(a.attachmentId, 5000, pattern(gen, 150_000));
          e.detachDisk(a.attachmentId);
        });
        op({ op: "rollback" }, () => e.applySnapshot(s.snapshotId as string, diskId));
        break;
      }
      case "migrate": {
        const token = tok(k);
        const encrypt = k % 2 === 1;
        const d = op({ op: "migrate", token, encrypt }, () => e.migrateDisk({ sourceDiskId: s.disks[0], encrypt, clientToken: token }), (x) => ({ diskId: x.diskId }));
        op({ op: "delete", diskId: d.diskId }, () => e.deleteDisk(d.diskId));
        break;
      }
      case "delete": {
        const g = (s.groups ?? [])[k];
        if (!g) return e.close();
        const order = pick([
          ["snap", "clone", "disk"],
          ["disk", "snap", "clone"],
          ["clone", "disk", "snap"],
        ]);
        for (const what of order) {
          if (what === "snap") op({ op: "deleteSnapshot", id: g.snap }, () => e.deleteSnapshot(g.snap));
          else op({ op: "deleteDisk", id: what === "disk" ? g.disk : g.clone }, () => e.deleteDisk(what === "disk" ? g.disk : g.clone));
        }
        break;
      }
    }
  }
  e.close();
}

try {
  main();
} catch (err) {
  process.stderr.write(`worker error: ${isEngineError(err) ? JSON.stringify(err.toJSON()) : (err as Error)?.stack ?? String(err)}\n`);
  process.exit(3);
}
void (null as unknown as Engine);
