/**
 * Issue 13 through the real Pulumi CLI, on one stack of test/e2e/programs/provider (engine
 * through the environment): KMS ordering without dependsOn (13.4), kmsKeyId (13.5), moving an
 * attachment (13.1), growth and its warnings (13.5), replacements a dependent makes impossible
 * and data-loss warnings (13.2), a replacement diff's cause (13.5), `up --replace` and SIGKILLed
 * ups with their recovery (13.3), destroy.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import Database from "better-sqlite3";
import { AuditEntry, E2EStack, PULUMI_BIN, opsByName, stepsOfFile } from "./harness";

interface Disk {
  diskId: string;
  sizeGb: number;
  diskType: string;
  name?: string;
}
interface Attachment {
  attachmentId: string;
  diskId: string;
  instanceId: string;
  reattachRequired: boolean;
}

const s = new E2EStack("test/e2e/programs/provider", "p13", "env");
const { step, failed } = stepsOfFile();
const ids: Record<string, string> = {};

beforeAll(async () => {
  await s.init();
});
afterAll(() => {
  process.stderr.write(`[e2e] provider commands:\n${s.timings()}\n`);
  s.cleanup(failed());
});

const urnOf = (name: string, type = "EncryptedDisk") => `urn:pulumi:p13::encdisk-e2e-provider::pulumi-nodejs:dynamic/encdisk:${type}::${name}`;

/** Every engine resource id (disks, snapshots, instances, attachments, images). */
async function engineIds(): Promise<string[]> {
  const all: string[] = [];
  for (const [listing, key] of [["disks", "diskId"], ["snapshots", "snapshotId"], ["instances", "instanceId"], ["attachments", "attachmentId"], ["images", "imageId"]] as const)
    all.push(...(await s.list<Record<string, string>>(listing)).map((r) => r[key]));
  return all.sort();
}

/** Every id in the stack's state that names an engine resource (KmsAuthorization's is the account). */
async function stateIds(): Promise<string[]> {
  const st = await s.stateResources();
  return Object.values(st)
    .filter((r) => !r.type.endsWith(":KmsAuthorization"))
    .map((r) => r.id as string)
    .sort();
}

async function attachments(): Promise<Attachment[]> {
  return s.list<Attachment>("attachments");
}

step("13.4: the first up on a fresh engine creates encrypted disks after KmsAuthorization through their kmsAuthorization input (no dependsOn)", async () => {
  await s.pulumi(["up", "--yes"]);
  const out = await s.outputs();
  Object.assign(ids, { data: out.dataDiskId as string, other: out.otherDiskId as string, att: out.attachmentId as string });
  const ins = out.instanceIds as Record<string, string>;
  Object.assign(ids, { web1: ins.web1, web2: ins.web2, west: ins.west });
  const atts = await attachments();
  expect(atts.map((a) => [a.diskId, a.instanceId])).toEqual([[ids.data, ids.web1]]);
  const audit = await s.list<AuditEntry>("audit");
  expect(audit.filter((a) => a.kmsApi === "GenerateDataKey")).toHaveLength(1);
  await s.pulumi(["preview", "--expect-no-changes"]);
});

step("13.5: a kmsKeyId input is refused at preview: the disk-encryption CMK is service-managed and cannot be chosen (K5/O3)", async () => {
  await s.config("kmsKeyId", "my-own-key");
  const r = await s.pulumi(["preview"], { allowFail: true });
  expect(r.code).not.toBe(0);
  expect(r.out).toMatch(/kmsKeyId.*service-managed and cannot be specified \(K5\/O3\)/);
  expect(r.out).not.toMatch(/unknown property "kmsKeyId"/);
  await s.configRm("kmsKeyId");
});

step("13.1: moving an Attachment to another instance, to another disk, and both at once: one up each, detach then attach", async () => {
  const moves: Array<[Record<string, string>, string, string]> = [
    [{ attInstance: "web2" }, "data", "web2"],
    [{ attInstance: "web1", attDisk: "other" }, "other", "web1"],
    [{ attDisk: "data" }, "data", "web1"],
  ];
  for (const [config, disk, instance] of moves) {
    for (const [k, v] of Object.entries(config)) await s.config(k, v);
    const p = await s.previewJson();
    expect(opsByName(p)).toEqual({ att: "replace" });
    const up = await s.pulumi(["up", "--yes"]);
    // delete-before-replace: the old attachment goes first.
    expect(up.stdout.indexOf("Attachment att deleted original")).toBeGreaterThan(-1);
    expect(up.stdout.indexOf("Attachment att deleted original")).toBeLessThan(up.stdout.indexOf("Attachment att created replacement"));
    const atts = await attachments();
    expect(atts.map((a) => [a.diskId, a.instanceId])).toEqual([[ids[disk], ids[instance]]]);
    const out = await s.outputs();
    expect([out.attachedDisk, out.attachedTo, out.attachmentId]).toEqual([ids[disk], ids[instance], atts[0].attachmentId]);
  }
  await s.configRm("attInstance");
  await s.configRm("attDisk");
  await s.pulumi(["preview", "--expect-no-changes"]);
});

step("13.5: growing an attached encrypted disk: the L6 warning is on the disk's own line, and reattachRequired is true right after that up and after refresh", async () => {
  await s.config("dataSizeGb", "20");
  const p = await s.previewJson();
  expect(opsByName(p)).toEqual({ data: "update", att: "update" });
  const l6 = (p.diagnostics ?? []).filter((d) => /L6: /.test(d.message));
  expect(l6.length).toBeGreaterThan(0);
  expect(l6.every((d) => d.urn === urnOf("data"))).toBe(true);
  const up = await s.pulumi(["up", "--yes"]);
  expect(up.stdout).toMatch(/EncryptedDisk \(data\):\s+warning: L6: /);
  for (const when of ["after up", "after refresh"]) {
    if (when === "after refresh") await s.pulumi(["refresh", "--yes"]);
    const out = await s.outputs();
    expect({ when, data: out.dataReattachRequired, att: out.attReattachRequired }).toEqual({ when, data: true, att: true });
    const st = await s.stateResources();
    expect({ when, att: st.att.outputs.reattachRequired, diskSizeGb: st.att.outputs.diskSizeGb }).toEqual({ when, att: true, diskSizeGb: 20 });
  }
  expect((await attachments())[0]).toMatchObject({ diskId: ids.data, reattachRequired: true });
  await s.pulumi(["preview", "--expect-no-changes"]);
});

step("13.2: changing the zone of a disk whose Attachment stays is refused at preview naming C1 (up changes nothing); moving both previews with a warning naming the disk, what is written and M1", async () => {
  const att = (await attachments())[0];
  const seed = path.join(s.tmp, "seed.bin");
  fs.writeFileSync(seed, Buffer.alloc(200 * 1024, 7));
  await s.encdisk(["write", att.attachmentId, "--file", seed]);
  const disksBefore = await engineIds();
  const auditBefore = await s.list<AuditEntry>("audit");

  await s.config("dataZone", "ap-guangzhou-4");
  for (const cmd of [["preview"], ["up", "--yes"]]) {
    const r = await s.pulumi(cmd, { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(new RegExp(`C1: ${ids.data} would be replaced by a disk in ap-guangzhou-4 .* keeps it on ${ids.web1} in ap-guangzhou-3`));
  }
  expect(await engineIds()).toEqual(disksBefore);
  expect(await s.list<AuditEntry>("audit")).toEqual(auditBefore);

  // Attaching it to an instance of the new zone in the same change is possible: a preview
  // that passes, and warns on the disk's line before its data would be lost.
  await s.config("attInstance", "west");
  const p = await s.previewJson();
  expect(opsByName(p)).toMatchObject({ data: "replace", att: "replace" });
  const warn = (p.diagnostics ?? []).find((d) => d.urn === urnOf("data") && /REPLACED/.test(d.message));
  expect(warn?.message).toMatch(new RegExp(`${ids.data} will be REPLACED \\(zone changed\\).*deleted with the 256 KiB written to it.*sourceDiskId: "${ids.data}".*M1`));
  await s.configRm("attInstance");
  await s.configRm("dataZone");
});

step("13.5: a replacement diff shows the input that causes it first, not every old output as deleted", async () => {
  await s.config("dataType", "CLOUD_SSD");
  const r = await s.pulumi(["preview", "--diff"]);
  const block = r.stdout.slice(r.stdout.indexOf(`[urn=${urnOf("data")}]`));
  const props = block.split("\n").slice(1).filter((l) => /^\s+[-+~ ] \w+\s*:/.test(l)).slice(0, 3);
  expect(props[0]).toMatch(/~ diskType\s*: "CLOUD_PREMIUM" => "CLOUD_SSD"/);
  expect(r.stdout).not.toMatch(/- createdAt/);
  await s.configRm("dataType");
  await s.pulumi(["preview", "--expect-no-changes"]);
});

step("13.3: pulumi up --replace of a disk yields a new disk id; the old one is deleted", async () => {
  await s.pulumi(["up", "--yes", "--replace", urnOf("other")]);
  const out = await s.outputs();
  expect(out.otherDiskId).not.toBe(ids.other);
  const disks = (await s.list<Disk>("disks")).map((d) => d.diskId);
  expect(disks).toContain(out.otherDiskId);
  expect(disks).not.toContain(ids.other);
  ids.other = out.otherDiskId as string;
  expect(await engineIds()).toEqual(await stateIds());
});

/** Start `pulumi up` and SIGKILL it once the engine holds `atLeast` disks. */
async function killUpWhen(atLeast: number): Promise<number> {
  const db = () => new Database(path.join(s.engineDir, "state.db"), { readonly: true, fileMustExist: true });
  const child = spawn(path.join(PULUMI_BIN, "pulumi"), ["up", "--yes", "--non-interactive", "--color", "never", "--stack", s.stack], { cwd: s.projectDir, env: s.env, stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const conn = db();
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const n = (conn.prepare("SELECT count(*) AS n FROM disks").get() as { n: number }).n;
      if (n >= atLeast || Date.now() > deadline) {
        child.kill("SIGKILL");
        await exited;
        return n;
      }
      await new Promise((r) => setTimeout(r, 15));
    }
  } finally {
    conn.close();
  }
}

/**
 * Pulumi's file backend (gocloud's fileblob) writes a stack's `<stack>.json.attrs` in place: a
 * SIGKILL at that moment leaves it empty, and every later command fails with "failed to load
 * checkpoint: EOF" (seen in a CI dry run). The checkpoint itself is written atomically; the empty
 * metadata file is what a user removes (docs/provider.md, Interrupted ups).
 */
function repairTornBackend(stateDir: string): void {
  const stacks = path.join(stateDir, ".pulumi", "stacks");
  if (!fs.existsSync(stacks)) return;
  for (const project of fs.readdirSync(stacks)) {
    for (const f of fs.readdirSync(path.join(stacks, project))) {
      const file = path.join(stacks, project, f);
      if (f.endsWith(".attrs") && fs.statSync(file).size === 0) fs.rmSync(file);
    }
  }
}

step(
  "13.3: SIGKILL of pulumi up mid-creation (two points); after pulumi cancel, up and encdisk orphans --stack-export --delete the engine holds exactly the state's resources, and billing matches the audit log",
  async () => {
    const base = (await s.list<Disk>("disks")).length;
    const found: number[] = [];
    for (const [bulk, killAt] of [[13, base + 2], [26, base + 13 + 7]]) {
      await s.config("bulk", String(bulk));
      const at = await killUpWhen(killAt);
      expect(at).toBeGreaterThanOrEqual(killAt);
      // As a user would: repair what the kill tore in Pulumi's own file backend (see
      // repairTornBackend), release the lock of the killed update, then run it again.
      repairTornBackend(s.stateDir);
      await s.pulumi(["cancel", "--yes"], { allowFail: true });
      await s.pulumi(["up", "--yes"]);
      await s.pulumi(["preview", "--expect-no-changes"]);
      const exportFile = path.join(s.tmp, `state-${bulk}.json`);
      await s.pulumi(["stack", "export", "--file", exportFile]);
      const listed = JSON.parse((await s.encdisk(["orphans", "--stack-export", exportFile, "--json"])).stdout) as Array<{ resourceId: string; owner: string }>;
      found.push(listed.length);
      const st = await stateIds();
      for (const o of listed) {
        expect(st).not.toContain(o.resourceId);
        expect(o.owner.startsWith("urn:pulumi:p13::encdisk-e2e-provider::")).toBe(true);
      }
      await s.encdisk(["orphans", "--stack-export", exportFile, "--delete"]);
      expect(await engineIds()).toEqual(st);
      expect(JSON.parse((await s.encdisk(["orphans", "--stack-export", exportFile, "--json"])).stdout)).toEqual([]);
    }
    process.stderr.write(`[e2e] 13.3: orphans found after the two killed ups: ${found.join(", ")}\n`);
    // B2: every billed call is in the audit log, and the balance is what they cost.
    const audit = await s.list<AuditEntry>("audit");
    const usage = JSON.parse((await s.encdisk(["usage", "--json"])).stdout) as { usage: Array<{ calls: number; chargedMicros: number }> };
    const billed = audit.filter((a) => a.billable);
    expect(usage.usage.reduce((n, u) => n + u.calls, 0)).toBe(billed.length);
    expect(usage.usage.reduce((n, u) => n + u.chargedMicros, 0)).toBe(billed.reduce((n, a) => n + a.priceMicros, 0));
    await s.encdisk(["check"]);
  },
  600_000,
);

step("destroy leaves nothing this stack made; encdisk orphans finds nothing", async () => {
  await s.pulumi(["destroy", "--yes"]);
  expect(await engineIds()).toEqual([]);
  const r = await s.encdisk(["orphans", "--project", "encdisk-e2e-provider", "--stack", "p13", "--stack-export", path.join(s.tmp, "state-26.json"), "--json"]);
  expect(JSON.parse(r.stdout)).toEqual([]);
  await s.encdisk(["check"]);
});
