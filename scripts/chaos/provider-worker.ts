/**
 * A `pulumi up` / `pulumi destroy`-style provider session (issue 7, part 2): drives the
 * provider hooks exactly as the dynamic-provider host does (check, then create; delete in
 * reverse order), in a loop for `durationMs`, against a shared engine directory. Prints
 * `ready`, then `result <json>` with the cycles completed and every error a user would see.
 */
import * as runtime from "../../provider/resources/runtime";

interface Cfg {
  dir: string;
  kmsRootKeyFile: string;
  worker: number;
  durationMs: number;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as Cfg;
  const values: Record<string, string> = { engineDir: cfg.dir, kmsRootKeyFile: cfg.kmsRootKeyFile };
  runtime.configure({ get: (k) => values[k.replace(/^encdisk:/, "")] });
  const errors: string[] = [];
  const ops: Record<string, number> = {};
  const hook = async (res: string, op: string, args: unknown[]) => {
    ops[`${res}.${op}`] = (ops[`${res}.${op}`] ?? 0) + 1;
    return (await runtime.hook(res, op, args)) as { id?: string; outs?: Record<string, unknown>; inputs?: Record<string, unknown>; failures?: { property: string; reason: string }[] };
  };
  /** check + create, as `pulumi up` does for a new resource. */
  const up = async (res: string, news: Record<string, unknown>) => {
    const c = await hook(res, "check", [{}, news]);
    if (c.failures?.length) throw new Error(`${res} check failed: ${JSON.stringify(c.failures)}`);
    const r = await hook(res, "create", [c.inputs]);
    return { id: r.id as string, outs: r.outs as Record<string, unknown> };
  };
  process.stdout.write("ready\n");
  const ppid = process.ppid;
  const deadline = Date.now() + cfg.durationMs;
  let cycles = 0;
  while (Date.now() < deadline && process.ppid === ppid) {
    const made: [string, string, Record<string, unknown>][] = [];
    try {
      const z = "ap-guangzhou-3";
      made.push(["KmsAuthorization", (await up("KmsAuthorization", {})).id, {}]);
      const ins = await up("Instance", { zone: z, instanceType: "S5.MEDIUM4", name: `s${cfg.worker}` });
      made.push(["Instance", ins.id, ins.outs]);
      const disk = await up("EncryptedDisk", { zone: z, sizeGb: 10, encrypt: cycles % 3 !== 2, name: `d${cfg.worker}` });
      made.push(["EncryptedDisk", disk.id, disk.outs]);
      const att = await up("Attachment", { diskId: disk.id, instanceId: ins.id });
      made.push(["Attachment", att.id, att.outs]);
      const snap = await up("Snapshot", { diskId: disk.id });
      made.push(["Snapshot", snap.id, snap.outs]);
      const copy = await up("EncryptedDisk", { sourceDiskId: disk.id, encrypt: true, name: `m${cfg.worker}` });
      made.push(["EncryptedDisk", copy.id, copy.outs]);
      const clone = await up("EncryptedDisk", { zone: z, snapshotId: snap.id });
      made.push(["EncryptedDisk", clone.id, clone.outs]);
      // A second `pulumi up` with nothing changed: diff says no changes; refresh reads.
      const d = await hook("EncryptedDisk", "diff", [disk.id, disk.outs, { zone: z, sizeGb: 10, encrypt: cycles % 3 !== 2, name: `d${cfg.worker}` }]);
      if ((d as { changes?: boolean }).changes) errors.push(`diff of an unchanged disk reports changes: ${JSON.stringify(d)}`);
      await hook("EncryptedDisk", "read", [disk.id, disk.outs]);
    } catch (err) {
      errors.push(`up: ${(err as Error)?.message ?? String(err)}`);
    }
    // `pulumi destroy`: reverse order; the KMS authorization stays (shared by the sessions).
    for (const [res, id, outs] of made.reverse()) {
      if (res === "KmsAuthorization") continue;
      try {
        await hook(res, "delete", [id, outs]);
      } catch (err) {
        errors.push(`destroy ${res} ${id}: ${(err as Error)?.message ?? String(err)}`);
      }
    }
    cycles++;
    if (errors.length > 20) break;
  }
  runtime.reset();
  process.stdout.write(`result ${JSON.stringify({ worker: cfg.worker, cycles, ops, errors })}\n`);
}

main().catch((err) => {
  process.stdout.write(`result ${JSON.stringify({ worker: -1, cycles: 0, ops: {}, errors: [`session crashed: ${(err as Error)?.stack ?? String(err)}`] })}\n`);
});
