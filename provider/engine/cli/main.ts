/**
 * `encdisk`: the operator CLI of an engine directory. Listings take `--json`; every error is
 * one line on stderr and a non-zero exit; `--help` works everywhere.
 */
import * as fs from "fs";
import { parseArgs } from "util";
import { isEngineError } from "../errors";
import { openEngine, resolveEngineDir } from "../engine";
import type { Engine, MigrateProgress } from "../types";
import { UNIT } from "../blockstore/blockstore";

type Flags = Record<string, string | boolean | undefined>;

interface Command {
  summary: string;
  usage: string;
  options?: Record<string, { type: "string" | "boolean"; short?: string }>;
  run(e: Engine, args: string[], flags: Flags, out: Output): number | void;
}

class Output {
  constructor(readonly json: boolean) {}
  print(value: unknown, table?: () => string[][]): void {
    if (this.json || !table) {
      process.stdout.write(JSON.stringify(value, null, 2) + "\n");
      return;
    }
    const rows = table();
    if (rows.length <= 1) {
      process.stdout.write("(none)\n");
      return;
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
    for (const r of rows) process.stdout.write(r.map((c, i) => (c ?? "").padEnd(widths[i])).join("  ").trimEnd() + "\n");
  }
  line(s: string): void {
    process.stdout.write(s + "\n");
  }
}

const money = (micros: number) => (micros / 1e6).toFixed(6);

function parseSize(s: string | boolean | undefined, what: string): number {
  if (s === undefined || typeof s === "boolean") throw new Error(`${what} is required`);
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(s.trim());
  if (!m) throw new Error(`${what} must be a byte count such as 4096, 64K, 16M or 1G; got ${JSON.stringify(s)}`);
  const mult: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
  const n = Number(m[1]) * mult[(m[2] ?? "").charAt(0).toUpperCase()];
  if (!Number.isSafeInteger(n)) throw new Error(`${what} is too large`);
  return n;
}

function need(args: string[], n: number, usage: string): void {
  if (args.length < n) throw new Error(`missing argument; usage: ${usage}`);
}

/**
 * From `pulumi stack export` output: the owner prefix of the stack's resources
 * (`urn:pulumi:STACK::PROJECT::`, taken from the URNs or from --project/--stack) and the ids
 * its state holds (live resources and resources pending deletion). A pending *create* of an
 * interrupted update may carry an id, but Pulumi does not manage it (the next up creates the
 * resource again): it is an orphan, so pending operations never protect an id.
 */
function stateOfExport(doc: unknown, project?: string, stack?: string): { ownerPrefix: string; ids: Set<string> } {
  const d = (doc as { deployment?: unknown })?.deployment ?? doc;
  const resources = ((d as { resources?: unknown })?.resources ?? []) as Array<{ urn?: string; id?: string }>;
  const pending = ((d as { pending_operations?: unknown })?.pending_operations ?? []) as Array<{ resource?: { urn?: string; id?: string } }>;
  if (!Array.isArray(resources)) throw new Error("not the output of `pulumi stack export`: no deployment.resources list");
  const all = [...resources, ...(Array.isArray(pending) ? pending.map((p) => p.resource ?? {}) : [])];
  const ids = new Set(resources.map((r) => r.id).filter((id): id is string => typeof id === "string" && id.length > 0));
  let prefix: string | undefined;
  if (project !== undefined || stack !== undefined) {
    if (project === undefined || stack === undefined) throw new Error("give both --project and --stack, or neither");
    prefix = `urn:pulumi:${stack}::${project}::`;
  } else {
    const urn = all.map((r) => r.urn).find((u): u is string => typeof u === "string");
    const m = urn ? /^(urn:pulumi:[^:]+::[^:]+::)/.exec(urn) : null;
    if (!m) throw new Error("the export holds no resources to name the stack by: give --project P --stack S");
    prefix = m[1];
  }
  return { ownerPrefix: prefix, ids };
}

const COMMANDS: Record<string, Command> = {
  regions: {
    summary: "list regions and their availability zones",
    usage: "encdisk regions [--json]",
    run: (e, _a, _f, o) => o.print(e.listRegions(), () => [["REGION", "ZONES"], ...e.listRegions().map((r) => [r.region, r.zones.join(",")])]),
  },
  keys: {
    summary: "list the service-managed disk-encryption CMKs (one per region, K2/K5)",
    usage: "encdisk keys [--region R] [--json]",
    options: { region: { type: "string" } },
    run: (e, _a, f, o) => {
      const keys = e.listKeys(f.region as string | undefined);
      o.print(keys, () => [["KEY ID", "REGION", "ALIAS", "STATE", "OWNER", "CREATED"], ...keys.map((k) => [k.keyId, k.region, k.alias, k.keyState, k.owner, k.createdAt])]);
    },
  },
  "describe-key": {
    summary: "describe one CMK",
    usage: "encdisk describe-key KEY_ID [--json]",
    run: (e, a, _f, o) => {
      need(a, 1, "encdisk describe-key KEY_ID");
      o.print(e.describeKey(a[0]));
    },
  },
  disks: {
    summary: "list disks",
    usage: "encdisk disks [--zone Z] [--region R] [--json]",
    options: { zone: { type: "string" }, region: { type: "string" } },
    run: (e, _a, f, o) => {
      const disks = e.listDisks({ zone: f.zone as string | undefined, region: f.region as string | undefined });
      o.print(disks, () => [
        ["DISK ID", "NAME", "ZONE", "TYPE", "USAGE", "SIZE GB", "ENCRYPTED", "STATE", "USED MiB", "KMS KEY"],
        ...disks.map((d) => [d.diskId, d.name, d.zone, d.diskType, d.diskUsage, String(d.sizeGb), d.encrypted ? "yes" : "no", d.state, (d.usedBytes / 2 ** 20).toFixed(1), d.kmsKeyId ?? "-"]),
      ]);
    },
  },
  snapshots: {
    summary: "list snapshots",
    usage: "encdisk snapshots [--disk DISK_ID] [--region R] [--json]",
    options: { disk: { type: "string" }, region: { type: "string" } },
    run: (e, _a, f, o) => {
      const s = e.listSnapshots({ diskId: f.disk as string | undefined, region: f.region as string | undefined });
      o.print(s, () => [["SNAPSHOT ID", "NAME", "DISK", "REGION", "SIZE GB", "ENCRYPTED", "STATE"], ...s.map((x) => [x.snapshotId, x.name, x.diskId, x.region, String(x.sizeGb), x.encrypted ? "yes" : "no", x.state])]);
    },
  },
  instances: {
    summary: "list instances",
    usage: "encdisk instances [--json]",
    run: (e, _a, _f, o) => {
      const s = e.listInstances();
      o.print(s, () => [["INSTANCE ID", "NAME", "ZONE", "TYPE", "LOCAL STORAGE"], ...s.map((x) => [x.instanceId, x.name, x.zone, x.instanceType, x.localStorage ? "yes" : "no"])]);
    },
  },
  attachments: {
    summary: "list attachments (and their NBD endpoints)",
    usage: "encdisk attachments [--instance INSTANCE_ID] [--json]",
    options: { instance: { type: "string" } },
    run: (e, _a, f, o) => {
      const s = e.listAttachments({ instanceId: f.instance as string | undefined });
      o.print(s, () => [
        ["ATTACHMENT ID", "DISK", "INSTANCE", "CAPACITY GB", "DISK GB", "REATTACH", "ENDPOINT", "KEY FILE"],
        ...s.map((x) => [x.attachmentId, x.diskId, x.instanceId, String(x.capacityGb), String(x.diskSizeGb), x.reattachRequired ? "needed (L6)" : "-", x.endpoint, x.pskFile]),
      ]);
    },
  },
  images: {
    summary: "list images",
    usage: "encdisk images [--json]",
    run: (e, _a, _f, o) => {
      const s = e.listImages();
      o.print(s, () => [["IMAGE ID", "NAME", "REGION", "SNAPSHOTS", "ENCRYPTED", "SHARED WITH"], ...s.map((x) => [x.imageId, x.name, x.region, x.snapshotIds.join(","), x.encrypted ? "yes" : "no", x.sharedWith.join(",") || "-"])]);
    },
  },
  usage: {
    summary: "KMS API calls and their bill per region (B2)",
    usage: "encdisk usage [--region R] [--json]",
    options: { region: { type: "string" } },
    run: (e, _a, f, o) => {
      const u = e.kmsUsage(f.region as string | undefined);
      const acct = e.getAccount();
      o.print({ usage: u, balance: acct.balanceMicros / 1e6, pricePerCall: acct.pricePerCallMicros / 1e6 }, () => [
        ["REGION", "KMS CALLS", "BILLED"],
        ...u.map((x) => [x.region, String(x.calls), money(x.chargedMicros)]),
        ["", "", ""],
        ["balance", "", money(acct.balanceMicros)],
      ]);
    },
  },
  audit: {
    summary: "the KMS audit log",
    usage: "encdisk audit [--region R] [--resource ID] [--json]",
    options: { region: { type: "string" }, resource: { type: "string" } },
    run: (e, _a, f, o) => {
      const s = e.auditLog({ region: f.region as string | undefined, resourceId: f.resource as string | undefined });
      o.print(s, () => [["SEQ", "TIME", "REGION", "OPERATION", "RESOURCE", "KMS API", "BILLED"], ...s.map((x) => [String(x.seq), x.time, x.region, x.operation, x.resourceId, x.kmsApi, x.billable ? money(x.priceMicros) : "free"])]);
    },
  },
  account: {
    summary: "the account: KMS authorization, balance, price per KMS call",
    usage: "encdisk account [--json]",
    run: (e, _a, _f, o) => {
      const a = e.getAccount();
      o.print({ ...a, balance: a.balanceMicros / 1e6, pricePerCall: a.pricePerCallMicros / 1e6 }, () => [
        ["ACCOUNT", "KMS AUTHORIZED", "BALANCE", "PRICE PER KMS CALL"],
        [a.accountId, a.kmsAuthorized ? "yes" : "no", money(a.balanceMicros), money(a.pricePerCallMicros)],
      ]);
    },
  },
  "authorize-kms": {
    summary: "authorize KMS for the account (O2: needed before the first encrypted disk)",
    usage: "encdisk authorize-kms",
    run: (e, _a, _f, o) => {
      e.authorizeKms();
      o.line("KMS authorized for this account");
    },
  },
  "top-up": {
    summary: "add to the account balance (in currency units, e.g. 10.5)",
    usage: "encdisk top-up AMOUNT",
    run: (e, a, _f, o) => {
      need(a, 1, "encdisk top-up AMOUNT");
      const v = Number(a[0]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`AMOUNT must be a positive number, got ${JSON.stringify(a[0])}`);
      o.line(`balance: ${money(e.topUp(Math.round(v * 1e6)).balanceMicros)}`);
    },
  },
  "create-disk": {
    summary: "create a disk",
    usage: "encdisk create-disk --zone Z --size GB [--type CLOUD_PREMIUM] [--usage DATA_DISK] [--encrypt] [--snapshot SNAP_ID] [--name N] [--json]",
    options: { zone: { type: "string" }, size: { type: "string" }, type: { type: "string" }, usage: { type: "string" }, encrypt: { type: "boolean" }, snapshot: { type: "string" }, name: { type: "string" } },
    run: (e, _a, f, o) => {
      const d = e.createDisk({
        zone: f.zone as string,
        sizeGb: f.size === undefined ? (undefined as unknown as number) : Number(f.size),
        diskType: f.type as never,
        diskUsage: f.usage as never,
        encrypt: f.encrypt === undefined ? undefined : (f.encrypt as boolean),
        snapshotId: f.snapshot as string | undefined,
        name: f.name as string | undefined,
      });
      o.json ? o.print(d) : o.line(d.diskId);
    },
  },
  "delete-disk": {
    summary: "terminate a disk (its snapshots stay)",
    usage: "encdisk delete-disk DISK_ID",
    run: (e, a, _f, o) => {
      need(a, 1, "encdisk delete-disk DISK_ID");
      e.deleteDisk(a[0]);
      o.line(`deleted ${a[0]}`);
    },
  },
  "resize-disk": {
    summary: "grow a disk",
    usage: "encdisk resize-disk DISK_ID --size GB",
    options: { size: { type: "string" } },
    run: (e, a, f, o) => {
      need(a, 1, "encdisk resize-disk DISK_ID --size GB");
      const d = e.resizeDisk(a[0], Number(f.size));
      o.line(`${d.diskId} is now ${d.sizeGb} GB`);
    },
  },
  "create-instance": {
    summary: "create an instance to attach disks to",
    usage: "encdisk create-instance --zone Z --type S5.MEDIUM4 [--local-storage] [--name N]",
    options: { zone: { type: "string" }, type: { type: "string" }, "local-storage": { type: "boolean" }, name: { type: "string" } },
    run: (e, _a, f, o) => {
      const i = e.createInstance({ zone: f.zone as string, instanceType: f.type as string, localStorage: f["local-storage"] as boolean | undefined, name: f.name as string | undefined });
      o.json ? o.print(i) : o.line(i.instanceId);
    },
  },
  attach: {
    summary: "attach a disk to an instance",
    usage: "encdisk attach DISK_ID INSTANCE_ID [--json]",
    run: (e, a, _f, o) => {
      need(a, 2, "encdisk attach DISK_ID INSTANCE_ID");
      const x = e.attachDisk({ diskId: a[0], instanceId: a[1] });
      o.json ? o.print(x) : o.line(x.attachmentId);
    },
  },
  detach: {
    summary: "detach a disk (by attachment or disk id)",
    usage: "encdisk detach ATTACHMENT_ID|DISK_ID",
    run: (e, a, _f, o) => {
      need(a, 1, "encdisk detach ATTACHMENT_ID|DISK_ID");
      e.detachDisk(a[0]);
      o.line(`detached ${a[0]}`);
    },
  },
  snapshot: {
    summary: "take a snapshot of a disk",
    usage: "encdisk snapshot DISK_ID [--name N]",
    options: { name: { type: "string" } },
    run: (e, a, f, o) => {
      need(a, 1, "encdisk snapshot DISK_ID");
      const s = e.createSnapshot({ diskId: a[0], name: f.name as string | undefined });
      o.json ? o.print(s) : o.line(s.snapshotId);
    },
  },
  rollback: {
    summary: "roll a disk back to one of its snapshots (ApplySnapshot; the disk must be detached)",
    usage: "encdisk rollback SNAPSHOT_ID DISK_ID",
    run: (e, a, _f, o) => {
      need(a, 2, "encdisk rollback SNAPSHOT_ID DISK_ID");
      e.applySnapshot(a[0], a[1]);
      o.line(`rolled ${a[1]} back to ${a[0]}`);
    },
  },
  write: {
    summary: "write a file into a disk through its attachment",
    usage: "encdisk write ATTACHMENT_ID --file F [--offset N]",
    options: { file: { type: "string" }, offset: { type: "string" } },
    run: (e, a, f, o) => {
      need(a, 1, "encdisk write ATTACHMENT_ID --file F [--offset N]");
      if (typeof f.file !== "string") throw new Error("--file is required");
      const offset = f.offset === undefined ? 0 : parseSize(f.offset, "--offset");
      const fd = fs.openSync(f.file, "r");
      const chunk = Buffer.allocUnsafe(16 * 1024 * 1024);
      let done = 0;
      try {
        for (;;) {
          const n = fs.readSync(fd, chunk, 0, chunk.length, null);
          if (n <= 0) break;
          e.write(a[0], offset + done, chunk.subarray(0, n));
          done += n;
        }
      } finally {
        fs.closeSync(fd);
      }
      e.flush(a[0]);
      o.line(`wrote ${done} bytes at offset ${offset}`);
    },
  },
  read: {
    summary: "read a range of a disk through its attachment into a file (or stdout)",
    usage: "encdisk read ATTACHMENT_ID --length N [--offset N] [--out F]",
    options: { out: { type: "string" }, offset: { type: "string" }, length: { type: "string" } },
    run: (e, a, f) => {
      need(a, 1, "encdisk read ATTACHMENT_ID --length N [--offset N] [--out F]");
      const offset = f.offset === undefined ? 0 : parseSize(f.offset, "--offset");
      const length = parseSize(f.length, "--length");
      const fd = typeof f.out === "string" ? fs.openSync(f.out, "w", 0o600) : 1;
      try {
        for (let done = 0; done < length; ) {
          const n = Math.min(16 * 1024 * 1024, length - done);
          fs.writeSync(fd, e.read(a[0], offset + done, n));
          done += n;
        }
      } finally {
        if (fd !== 1) fs.closeSync(fd);
      }
    },
  },
  migrate: {
    summary: "M1: copy a disk's data onto a new disk of the other encryption kind",
    usage: "encdisk migrate SOURCE_DISK_ID (--encrypt|--plain) [--name N] [--json]",
    options: { encrypt: { type: "boolean" }, plain: { type: "boolean" }, name: { type: "string" } },
    run: (e, a, f, o) => {
      need(a, 1, "encdisk migrate SOURCE_DISK_ID (--encrypt|--plain)");
      if (!!f.encrypt === !!f.plain) throw new Error("say either --encrypt or --plain: the encryption of the new disk");
      let last = 0;
      const d = e.migrateDisk({ sourceDiskId: a[0], encrypt: !!f.encrypt, name: f.name as string | undefined }, (p: MigrateProgress) => {
        if (Date.now() - last > 500 && !o.json) {
          last = Date.now();
          process.stderr.write(`copied ${(p.copiedBytes / 2 ** 20).toFixed(0)} of ${(p.totalBytes / 2 ** 20).toFixed(0)} MiB written data\n`);
        }
      });
      o.json ? o.print(d) : o.line(`${d.diskId} (${d.encrypted ? "encrypted" : "plain"}) holds the data of ${a[0]}`);
    },
  },
  orphans: {
    summary: "what a Pulumi stack owns in the engine that its state does not hold (left by an interrupted up); --delete removes it",
    usage: "encdisk orphans --stack-export FILE [--project P --stack S] [--delete] [--json]   (FILE: the output of `pulumi stack export`)",
    options: { "stack-export": { type: "string" }, project: { type: "string" }, stack: { type: "string" }, delete: { type: "boolean" } },
    run: (e, _a, f, o) => {
      const file = f["stack-export"];
      if (typeof file !== "string") throw new Error("--stack-export FILE is required (write it with: pulumi stack export --file FILE)");
      const state = stateOfExport(JSON.parse(fs.readFileSync(file, "utf8")) as unknown, f.project as string | undefined, f.stack as string | undefined);
      const orphans = e.listOwned(state.ownerPrefix).filter((r) => !state.ids.has(r.resourceId));
      const rows = () => [["ID", "KIND", "OWNER", "CREATED"], ...orphans.map((r) => [r.resourceId, r.kind, r.owner, r.createdAt])];
      if (!f.delete) {
        o.print(orphans, rows);
        return;
      }
      // Dependents first: an attachment holds its disk, images hold snapshots.
      const order: Record<string, number> = { attachment: 0, image: 1, snapshot: 2, disk: 3, instance: 4 };
      const failed: string[] = [];
      for (const r of [...orphans].sort((x, y) => order[x.kind] - order[y.kind])) {
        try {
          if (r.kind === "attachment") e.detachDisk(r.resourceId);
          else if (r.kind === "image") e.deleteImage(r.resourceId);
          else if (r.kind === "snapshot") e.deleteSnapshot(r.resourceId);
          else if (r.kind === "disk") e.deleteDisk(r.resourceId);
          else e.deleteInstance(r.resourceId);
          if (!o.json) o.line(`deleted ${r.kind} ${r.resourceId} (${r.owner})`);
        } catch (err) {
          failed.push(r.resourceId);
          process.stderr.write(`encdisk orphans: ${r.resourceId}: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}\n`);
        }
      }
      if (o.json) o.print({ deleted: orphans.map((r) => r.resourceId).filter((id) => !failed.includes(id)), failed });
      else o.line(`${orphans.length - failed.length} orphans deleted${failed.length ? `, ${failed.length} failed` : ""}`);
      return failed.length ? 1 : 0;
    },
  },
  verify: {
    summary: "scan the engine directory for plaintext key material (DK, CMK, root key)",
    usage: "encdisk verify [--json]",
    run: (e, _a, _f, o) => {
      const r = e.verifyNoKeyMaterial();
      if (o.json) o.print(r);
      else {
        for (const f of r.findings) o.line(`FOUND ${f}`);
        o.line(`scanned ${r.filesScanned} files, ${r.bytesScanned} bytes: ${r.findings.length ? `${r.findings.length} findings` : "no plaintext key material"}`);
      }
      return r.findings.length ? 1 : 0;
    },
  },
  check: {
    summary: "check the state and block files for broken invariants",
    usage: "encdisk check [--json]",
    run: (e, _a, _f, o) => {
      const r = e.check();
      if (o.json) o.print(r);
      else {
        for (const p of r.problems) o.line(`PROBLEM ${p}`);
        o.line(`${r.disks} disks, ${r.snapshots} snapshots, ${r.units} units (${((r.units * UNIT) / 2 ** 20).toFixed(1)} MiB mapped): ${r.problems.length ? `${r.problems.length} problems` : "healthy"}`);
      }
      return r.problems.length ? 1 : 0;
    },
  },
};

const GLOBAL = "global options: --dir DIR (engine directory; default $ENCDISK_DIR or ~/.encdisk), --kms-root-key-file FILE, --json, --help";

function help(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length), 5);
  return [
    "encdisk: operate a pulumi-encdisk engine directory (the local cloud behind the Pulumi provider)",
    "",
    "usage: encdisk COMMAND [ARGS] [OPTIONS]",
    "",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
    `  ${"serve".padEnd(w)}  serve every attachment over NBD with TLS-PSK (W2)`,
    "",
    GLOBAL,
    "Run `encdisk COMMAND --help` for a command's usage.",
  ].join("\n");
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help() + "\n");
    return name ? 0 : 2;
  }
  if (name === "serve") {
    const { serveCommand } = await import("./serve");
    return serveCommand(rest);
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`encdisk: unknown command ${JSON.stringify(name)}; run encdisk --help\n`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: { ...(cmd.options ?? {}), dir: { type: "string" }, "kms-root-key-file": { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    process.stderr.write(`encdisk ${name}: ${(e as Error).message}; usage: ${cmd.usage}\n`);
    return 2;
  }
  const flags = parsed.values as Flags;
  if (flags.help) {
    process.stdout.write(`${cmd.summary}\nusage: ${cmd.usage}\n${GLOBAL}\n`);
    return 0;
  }
  let engine: Engine | undefined;
  try {
    engine = openEngine({ dir: resolveEngineDir(flags.dir as string | undefined), kmsRootKeyFile: flags["kms-root-key-file"] as string | undefined });
    const code = cmd.run(engine, parsed.positionals, flags, new Output(!!flags.json));
    return typeof code === "number" ? code : 0;
  } catch (e) {
    const msg = isEngineError(e) ? e.message : e instanceof Error ? e.message : String(e);
    process.stderr.write(`encdisk ${name}: ${msg.split("\n")[0]}\n`);
    return 1;
  } finally {
    engine?.close();
  }
}
