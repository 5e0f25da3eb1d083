/**
 * `encdisk`: the operator CLI of an engine directory. Every command takes `--json` and the
 * global flags anywhere on the line; what it does not understand (unknown flags, extra
 * arguments, numbers that are not plain decimals) is refused; every error is one line on
 * stderr, `encdisk COMMAND: [Code] message`, and a non-zero exit (2 for the command line,
 * 1 otherwise); `--help` works everywhere, `--version` and `doctor` say what is installed.
 */
import * as fs from "fs";
import { EngineError, ErrorCodes } from "../errors";
import { resolveEngineDir } from "../engine";
import type { Engine, MigrateProgress } from "../types";
import { UNIT } from "../blockstore/blockstore";
import { cipherBackend } from "../blockstore/gcm";
import { Flags, OptionSpec, SERVE_OPTIONS, SERVE_USAGE, parseAmountMicros, parseByteCount, parseCommandLine, parseDecimal, positionals, usageError } from "./args";
import { findTool, openCliEngine, packageVersion, printError } from "./common";
import { Progress } from "./progress";

interface Command {
  summary: string;
  usage: string;
  options?: OptionSpec;
  /** Commands that need no engine (doctor) get none. */
  noEngine?: boolean;
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
  /** `value` as JSON with --json, else the human line. */
  result(value: unknown, line: string): void {
    if (this.json) this.print(value);
    else this.line(line);
  }
}

const money = (micros: number) => (micros / 1e6).toFixed(6);
const str = (v: string | boolean | undefined): string | undefined => (typeof v === "string" ? v : undefined);

/** The real clients and tools doctor looks for, and what each is for. */
const TOOLS: Array<[string, string]> = [
  ["nbdinfo", "libnbd-bin: inspect an export"],
  ["nbdcopy", "libnbd-bin: copy images in and out"],
  ["nbdfuse", "libnbd-bin/nbdfuse: an export as a file"],
  ["qemu-img", "qemu-utils: convert images over NBD"],
  ["qemu-io", "qemu-utils: I/O patterns over NBD"],
  ["psktool", "gnutls-bin: TLS-PSK key files"],
  ["nbdkit", "nbdkit: benchmarks"],
  ["mkfs.ext4", "e2fsprogs: a filesystem on an export"],
];

function doctorReport(): Record<string, unknown> {
  return {
    package: "pulumi-encdisk",
    version: packageVersion(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cipher: { backend: cipherBackend.name, threads: cipherBackend.threads, detail: cipherBackend.detail, native: cipherBackend.name !== "node" },
    tools: Object.fromEntries(TOOLS.map(([t]) => [t, findTool(t) ?? null])),
  };
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
    run: (e, a, _f, o) => {
      positionals(a, [], COMMANDS.regions.usage);
      o.print(e.listRegions(), () => [["REGION", "ZONES"], ...e.listRegions().map((r) => [r.region, r.zones.join(",")])]);
    },
  },
  keys: {
    summary: "list the service-managed disk-encryption CMKs (one per region, K2/K5)",
    usage: "encdisk keys [--region R] [--json]",
    options: { region: { type: "string" } },
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS.keys.usage);
      const keys = e.listKeys(str(f.region));
      o.print(keys, () => [["KEY ID", "REGION", "ALIAS", "STATE", "OWNER", "CREATED"], ...keys.map((k) => [k.keyId, k.region, k.alias, k.keyState, k.owner, k.createdAt])]);
    },
  },
  "describe-key": {
    summary: "describe one CMK",
    usage: "encdisk describe-key KEY_ID [--json]",
    run: (e, a, _f, o) => {
      const [keyId] = positionals(a, ["KEY_ID"], COMMANDS["describe-key"].usage);
      o.print(e.describeKey(keyId));
    },
  },
  disks: {
    summary: "list disks",
    usage: "encdisk disks [--zone Z] [--region R] [--json]",
    options: { zone: { type: "string" }, region: { type: "string" } },
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS.disks.usage);
      const disks = e.listDisks({ zone: str(f.zone), region: str(f.region) });
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
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS.snapshots.usage);
      const s = e.listSnapshots({ diskId: str(f.disk), region: str(f.region) });
      o.print(s, () => [["SNAPSHOT ID", "NAME", "DISK", "REGION", "SIZE GB", "ENCRYPTED", "STATE"], ...s.map((x) => [x.snapshotId, x.name, x.diskId, x.region, String(x.sizeGb), x.encrypted ? "yes" : "no", x.state])]);
    },
  },
  instances: {
    summary: "list instances",
    usage: "encdisk instances [--json]",
    run: (e, a, _f, o) => {
      positionals(a, [], COMMANDS.instances.usage);
      const s = e.listInstances();
      o.print(s, () => [["INSTANCE ID", "NAME", "ZONE", "TYPE", "LOCAL STORAGE"], ...s.map((x) => [x.instanceId, x.name, x.zone, x.instanceType, x.localStorage ? "yes" : "no"])]);
    },
  },
  attachments: {
    summary: "list attachments (and their NBD endpoints)",
    usage: "encdisk attachments [--instance INSTANCE_ID] [--json]",
    options: { instance: { type: "string" } },
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS.attachments.usage);
      const s = e.listAttachments({ instanceId: str(f.instance) });
      o.print(s, () => [
        ["ATTACHMENT ID", "DISK", "INSTANCE", "CAPACITY GB", "DISK GB", "REATTACH", "ENDPOINT", "KEY FILE"],
        ...s.map((x) => [x.attachmentId, x.diskId, x.instanceId, String(x.capacityGb), String(x.diskSizeGb), x.reattachRequired ? "needed (L6)" : "-", x.endpoint, x.pskFile]),
      ]);
    },
  },
  images: {
    summary: "list images",
    usage: "encdisk images [--json]",
    run: (e, a, _f, o) => {
      positionals(a, [], COMMANDS.images.usage);
      const s = e.listImages();
      o.print(s, () => [["IMAGE ID", "NAME", "REGION", "SNAPSHOTS", "ENCRYPTED", "SHARED WITH"], ...s.map((x) => [x.imageId, x.name, x.region, x.snapshotIds.join(","), x.encrypted ? "yes" : "no", x.sharedWith.join(",") || "-"])]);
    },
  },
  usage: {
    summary: "KMS API calls and their bill per region (B2)",
    usage: "encdisk usage [--region R] [--json]",
    options: { region: { type: "string" } },
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS.usage.usage);
      const u = e.kmsUsage(str(f.region));
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
    usage: "encdisk audit [--region R] [--resource ID] [--since SEQ] [--json]",
    options: { region: { type: "string" }, resource: { type: "string" }, since: { type: "string" } },
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS.audit.usage);
      const sinceSeq = f.since === undefined ? undefined : parseDecimal(f.since, "--since");
      const s = e.auditLog({ region: str(f.region), resourceId: str(f.resource), ...(sinceSeq === undefined ? {} : { sinceSeq }) });
      o.print(s, () => [["SEQ", "TIME", "REGION", "OPERATION", "RESOURCE", "KMS API", "BILLED"], ...s.map((x) => [String(x.seq), x.time, x.region, x.operation, x.resourceId, x.kmsApi, x.billable ? money(x.priceMicros) : "free"])]);
    },
  },
  account: {
    summary: "the account: KMS authorization, balance, price per KMS call",
    usage: "encdisk account [--json]",
    run: (e, a, _f, o) => {
      positionals(a, [], COMMANDS.account.usage);
      const acct = e.getAccount();
      o.print({ ...acct, balance: acct.balanceMicros / 1e6, pricePerCall: acct.pricePerCallMicros / 1e6 }, () => [
        ["ACCOUNT", "KMS AUTHORIZED", "BALANCE", "PRICE PER KMS CALL"],
        [acct.accountId, acct.kmsAuthorized ? "yes" : "no", money(acct.balanceMicros), money(acct.pricePerCallMicros)],
      ]);
    },
  },
  "authorize-kms": {
    summary: "authorize KMS for the account (O2: needed before the first encrypted disk)",
    usage: "encdisk authorize-kms [--json]",
    run: (e, a, _f, o) => {
      positionals(a, [], COMMANDS["authorize-kms"].usage);
      const acct = e.authorizeKms();
      o.result(acct, "KMS authorized for this account");
    },
  },
  "top-up": {
    summary: "add to the account balance (in currency units, e.g. 10.5; up to 6 decimals)",
    usage: "encdisk top-up AMOUNT [--json]",
    run: (e, a, _f, o) => {
      const [amount] = positionals(a, ["AMOUNT"], COMMANDS["top-up"].usage);
      const acct = e.topUp(parseAmountMicros(amount, "AMOUNT"));
      o.result({ ...acct, balance: acct.balanceMicros / 1e6 }, `balance: ${money(acct.balanceMicros)}`);
    },
  },
  "create-disk": {
    summary: "create a disk",
    usage: "encdisk create-disk --zone Z --size GB [--type CLOUD_PREMIUM] [--usage DATA_DISK] [--encrypt] [--snapshot SNAP_ID] [--name N] [--json]",
    options: { zone: { type: "string" }, size: { type: "string" }, type: { type: "string" }, usage: { type: "string" }, encrypt: { type: "boolean" }, snapshot: { type: "string" }, name: { type: "string" } },
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS["create-disk"].usage);
      const d = e.createDisk({
        zone: f.zone as string,
        sizeGb: f.size === undefined ? (undefined as unknown as number) : parseDecimal(f.size, "--size"),
        diskType: f.type as never,
        diskUsage: f.usage as never,
        encrypt: f.encrypt === undefined ? undefined : (f.encrypt as boolean),
        snapshotId: str(f.snapshot),
        name: str(f.name),
      });
      o.result(d, d.diskId);
    },
  },
  "delete-disk": {
    summary: "terminate a disk (its snapshots stay)",
    usage: "encdisk delete-disk DISK_ID [--json]",
    run: (e, a, _f, o) => {
      const [diskId] = positionals(a, ["DISK_ID"], COMMANDS["delete-disk"].usage);
      e.deleteDisk(diskId);
      o.result({ deleted: diskId }, `deleted ${diskId}`);
    },
  },
  "resize-disk": {
    summary: "grow a disk",
    usage: "encdisk resize-disk DISK_ID --size GB [--json]",
    options: { size: { type: "string" } },
    run: (e, a, f, o) => {
      const [diskId] = positionals(a, ["DISK_ID"], COMMANDS["resize-disk"].usage);
      if (f.size === undefined) throw usageError("--size GB is required", COMMANDS["resize-disk"].usage);
      const d = e.resizeDisk(diskId, parseDecimal(f.size, "--size"));
      o.result(d, `${d.diskId} is now ${d.sizeGb} GB`);
    },
  },
  "create-instance": {
    summary: "create an instance to attach disks to",
    usage: "encdisk create-instance --zone Z --type S5.MEDIUM4 [--local-storage] [--name N] [--json]",
    options: { zone: { type: "string" }, type: { type: "string" }, "local-storage": { type: "boolean" }, name: { type: "string" } },
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS["create-instance"].usage);
      const i = e.createInstance({ zone: f.zone as string, instanceType: f.type as string, localStorage: f["local-storage"] as boolean | undefined, name: str(f.name) });
      o.result(i, i.instanceId);
    },
  },
  attach: {
    summary: "attach a disk to an instance",
    usage: "encdisk attach DISK_ID INSTANCE_ID [--json]",
    run: (e, a, _f, o) => {
      const [diskId, instanceId] = positionals(a, ["DISK_ID", "INSTANCE_ID"], COMMANDS.attach.usage);
      const x = e.attachDisk({ diskId, instanceId });
      o.result(x, x.attachmentId);
    },
  },
  detach: {
    summary: "detach a disk (by attachment or disk id)",
    usage: "encdisk detach ATTACHMENT_ID|DISK_ID [--json]",
    run: (e, a, _f, o) => {
      const [id] = positionals(a, ["ATTACHMENT_ID|DISK_ID"], COMMANDS.detach.usage);
      e.detachDisk(id);
      o.result({ detached: id }, `detached ${id}`);
    },
  },
  snapshot: {
    summary: "take a snapshot of a disk",
    usage: "encdisk snapshot DISK_ID [--name N] [--json]",
    options: { name: { type: "string" } },
    run: (e, a, f, o) => {
      const [diskId] = positionals(a, ["DISK_ID"], COMMANDS.snapshot.usage);
      const s = e.createSnapshot({ diskId, name: str(f.name) });
      o.result(s, s.snapshotId);
    },
  },
  rollback: {
    summary: "roll a disk back to one of its snapshots (ApplySnapshot; the disk must be detached)",
    usage: "encdisk rollback SNAPSHOT_ID DISK_ID [--json]",
    run: (e, a, _f, o) => {
      const [snapshotId, diskId] = positionals(a, ["SNAPSHOT_ID", "DISK_ID"], COMMANDS.rollback.usage);
      const d = e.applySnapshot(snapshotId, diskId);
      o.result(d, `rolled ${diskId} back to ${snapshotId}`);
    },
  },
  write: {
    summary: "write a file into a disk through its attachment (progress on a terminal)",
    usage: "encdisk write ATTACHMENT_ID --file F [--offset BYTES] [--json]",
    options: { file: { type: "string" }, offset: { type: "string" } },
    run: (e, a, f, o) => {
      const [att] = positionals(a, ["ATTACHMENT_ID"], COMMANDS.write.usage);
      if (typeof f.file !== "string") throw usageError("--file F is required", COMMANDS.write.usage);
      const offset = f.offset === undefined ? 0 : parseByteCount(f.offset, "--offset");
      const fd = fs.openSync(f.file, "r");
      const chunk = Buffer.allocUnsafe(16 * 1024 * 1024);
      let done = 0;
      try {
        const st = fs.fstatSync(fd);
        const progress = Progress.for(`write ${att}`, st.isFile() ? st.size : 0, o.json);
        for (;;) {
          const n = fs.readSync(fd, chunk, 0, chunk.length, null);
          if (n <= 0) break;
          e.write(att, offset + done, chunk.subarray(0, n));
          done += n;
          progress.update(done, Math.max(done, st.isFile() ? st.size : done));
        }
        e.flush(att);
        progress.done();
      } finally {
        fs.closeSync(fd);
      }
      o.result({ attachmentId: att, bytes: done, offset }, `wrote ${done} bytes at offset ${offset}`);
    },
  },
  read: {
    summary: "read a range of a disk through its attachment into a file (progress on a terminal) or stdout",
    usage: "encdisk read ATTACHMENT_ID --length BYTES [--offset BYTES] [--out F] [--json]",
    options: { out: { type: "string" }, offset: { type: "string" }, length: { type: "string" } },
    run: (e, a, f, o) => {
      const [att] = positionals(a, ["ATTACHMENT_ID"], COMMANDS.read.usage);
      const offset = f.offset === undefined ? 0 : parseByteCount(f.offset, "--offset");
      if (f.length === undefined) throw usageError("--length BYTES is required", COMMANDS.read.usage);
      const length = parseByteCount(f.length, "--length");
      const out = str(f.out);
      if (out === undefined && o.json) {
        // --json without --out: the bytes as base64 inside the JSON (stdout stays one document).
        o.print({ attachmentId: att, offset, length, base64: e.read(att, offset, length).toString("base64") });
        return;
      }
      const fd = out !== undefined ? fs.openSync(out, "w", 0o600) : 1;
      const progress = Progress.for(`read ${att}`, length, o.json || out === undefined);
      try {
        for (let done = 0; done < length; ) {
          const n = Math.min(16 * 1024 * 1024, length - done);
          const data = e.read(att, offset + done, n);
          try {
            fs.writeSync(fd, data);
          } catch (err) {
            // Name the output (Node's write errors carry no path) rather than the engine directory.
            throw Object.assign(err as Error, { path: out ?? "stdout" });
          }
          done += n;
          progress.update(done);
        }
        progress.done();
      } finally {
        if (fd !== 1) fs.closeSync(fd);
      }
      if (out !== undefined) o.result({ attachmentId: att, offset, length, out }, `read ${length} bytes at offset ${offset} into ${out}`);
    },
  },
  migrate: {
    summary: "M1: copy a disk's data onto a new disk of the other encryption kind (progress on a terminal; resumes an interrupted one)",
    usage: "encdisk migrate SOURCE_DISK_ID (--encrypt|--plain) [--name N] [--json]",
    options: { encrypt: { type: "boolean" }, plain: { type: "boolean" }, name: { type: "string" } },
    run: (e, a, f, o) => {
      const [source] = positionals(a, ["SOURCE_DISK_ID"], COMMANDS.migrate.usage);
      if (!!f.encrypt === !!f.plain) throw usageError("say either --encrypt or --plain: the encryption of the new disk", COMMANDS.migrate.usage);
      // An interrupted migration of this source to this kind (a DUMPING disk) is resumed, not started anew.
      const dumping = e.listDisks().find((x) => x.state === "DUMPING" && x.sourceDiskId === source && x.encrypted === !!f.encrypt);
      if (dumping && !o.json) process.stderr.write(`resuming the interrupted migration onto ${dumping.diskId}\n`);
      const progress = Progress.for(`migrate ${source}`, 0, o.json);
      const onProgress = (p: MigrateProgress) => progress.update(p.copiedBytes, p.totalBytes);
      const d = dumping ? e.resumeMigration(dumping.diskId, onProgress) : e.migrateDisk({ sourceDiskId: source, encrypt: !!f.encrypt, name: str(f.name) }, onProgress);
      progress.done();
      o.result(d, `${d.diskId} (${d.encrypted ? "encrypted" : "plain"}) holds the data of ${source}`);
    },
  },
  orphans: {
    summary: "what a Pulumi stack owns in the engine that its state does not hold (left by an interrupted up); --delete removes it",
    usage: "encdisk orphans --stack-export FILE [--project P --stack S] [--delete] [--json]   (FILE: the output of `pulumi stack export`)",
    options: { "stack-export": { type: "string" }, project: { type: "string" }, stack: { type: "string" }, delete: { type: "boolean" } },
    run: (e, a, f, o) => {
      positionals(a, [], COMMANDS.orphans.usage);
      const file = f["stack-export"];
      if (typeof file !== "string") throw usageError("--stack-export FILE is required (write it with: pulumi stack export --file FILE)", COMMANDS.orphans.usage);
      let exported: unknown;
      try {
        exported = JSON.parse(fs.readFileSync(file, "utf8"));
      } catch (err) {
        if (err instanceof SyntaxError) throw new EngineError(ErrorCodes.InvalidParameterValue, `${file} is not JSON (${err.message}); write it with: pulumi stack export --file FILE`, { property: "stack-export" });
        throw err;
      }
      const state = stateOfExport(exported, str(f.project), str(f.stack));
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
          printError(`encdisk orphans: ${r.resourceId}`, err);
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
    run: (e, a, _f, o) => {
      positionals(a, [], COMMANDS.verify.usage);
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
    run: (e, a, _f, o) => {
      positionals(a, [], COMMANDS.check.usage);
      const r = e.check();
      if (o.json) o.print(r);
      else {
        for (const p of r.problems) o.line(`PROBLEM ${p}`);
        o.line(`${r.disks} disks, ${r.snapshots} snapshots, ${r.units} units (${((r.units * UNIT) / 2 ** 20).toFixed(1)} MiB mapped): ${r.problems.length ? `${r.problems.length} problems` : "healthy"}`);
      }
      return r.problems.length ? 1 : 0;
    },
  },
  doctor: {
    summary: "what is installed: package and Node versions, the cipher in use, the real NBD clients found",
    usage: "encdisk doctor [--json]",
    noEngine: true,
    run: (_e, a, _f, o) => {
      positionals(a, [], COMMANDS.doctor.usage);
      const r = doctorReport() as { version: string; node: string; platform: string; cipher: { native: boolean; detail: string }; tools: Record<string, string | null> };
      if (o.json) return o.print(r);
      o.line(`pulumi-encdisk ${r.version} on Node ${r.node} (${r.platform})`);
      o.line(`cipher: ${r.cipher.detail}${r.cipher.native ? "" : " — the slow fallback: npm rebuild pulumi-encdisk (or npm run build:native) builds the native addon"}`);
      for (const [t, what] of TOOLS) o.line(`${(r.tools[t] ? "found  " : "missing").padEnd(7)}  ${t.padEnd(9)}  ${r.tools[t] ?? `(${what})`}`);
      const missing = TOOLS.filter(([t]) => !r.tools[t]).length;
      o.line(missing ? `${missing} tools missing: npm run setup in the repository installs them (Debian)` : "every real client found");
    },
  },
};

const SERVE = { summary: "serve every attachment over NBD with TLS-PSK (W2)", usage: SERVE_USAGE.slice("usage: ".length) };

const GLOBAL = "global options (anywhere on the line): --dir DIR (engine directory; default $ENCDISK_DIR or ~/.encdisk), --kms-root-key-file FILE, --json, --help, --version";

function help(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length), 5);
  return [
    "encdisk: operate a pulumi-encdisk engine directory (the local cloud behind the Pulumi provider)",
    "",
    "usage: encdisk COMMAND [ARGS] [OPTIONS]",
    "",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
    `  ${"serve".padEnd(w)}  ${SERVE.summary}`,
    "",
    GLOBAL,
    "Numbers are plain decimal integers; byte counts may end in K, M, G or T (binary).",
    "Run `encdisk COMMAND --help` for a command's usage.",
  ].join("\n");
}

function versionLine(json: boolean): string {
  const v = packageVersion();
  return json ? JSON.stringify({ package: "pulumi-encdisk", version: v, node: process.version, cipher: cipherBackend.name }) : `pulumi-encdisk ${v} (Node ${process.version}, cipher ${cipherBackend.name})`;
}

const ALL_OPTIONS: OptionSpec = Object.assign({}, SERVE_OPTIONS, ...Object.values(COMMANDS).map((c) => c.options ?? {}));

/** Runs the CLI; returns the exit code. Every error is printed here, as one line with its code. */
export async function main(argv: string[]): Promise<number> {
  let name = "encdisk";
  let phase: "args" | "run" = "args";
  let engine: Engine | undefined;
  let dir: string | undefined;
  let usage: string | undefined;
  try {
    const line = parseCommandLine(
      argv,
      ALL_OPTIONS,
      (c) => (c === "serve" ? SERVE_OPTIONS : c === "help" ? {} : COMMANDS[c] ? (COMMANDS[c].options ?? {}) : undefined),
      (c) => (c === "serve" ? SERVE.usage : COMMANDS[c]?.usage),
    );
    const { command, flags } = line;
    const json = !!flags.json;
    if (flags.version) {
      process.stdout.write(versionLine(json) + "\n");
      return 0;
    }
    if (command === undefined || command === "help") {
      const topic = command === "help" ? line.positionals[0] : undefined;
      if (topic !== undefined && !COMMANDS[topic] && topic !== "serve") throw usageError(`unknown command ${JSON.stringify(topic)}; run encdisk --help for the list`);
      if (command === "help") positionals(line.positionals, topic === undefined ? [] : ["COMMAND"], "encdisk help [COMMAND]");
      if (topic === "serve") process.stdout.write(`${SERVE.summary}\nusage: ${SERVE.usage}\n${GLOBAL}\n`);
      else if (topic !== undefined) process.stdout.write(`${COMMANDS[topic].summary}\nusage: ${COMMANDS[topic].usage}\n${GLOBAL}\n`);
      else process.stdout.write(help() + "\n");
      if (command === undefined && !flags.help) throw usageError("no command given; run encdisk --help");
      return 0;
    }
    name = `encdisk ${command}`;
    usage = command === "serve" ? SERVE.usage : COMMANDS[command].usage;
    if (command === "serve") {
      const { serveCommand } = await import("./serve");
      // serve parses its own flags (the same ones, checked again) so it can run embedded.
      return await serveCommand(line.rest);
    }
    const cmd = COMMANDS[command];
    if (flags.help) {
      process.stdout.write(`${cmd.summary}\nusage: ${cmd.usage}\n${GLOBAL}\n`);
      return 0;
    }
    phase = "run";
    const out = new Output(json);
    if (cmd.noEngine) return cmd.run(undefined as unknown as Engine, line.positionals, flags, out) ?? 0;
    dir = resolveEngineDir(str(flags.dir));
    engine = openCliEngine({ dir, kmsRootKeyFile: str(flags["kms-root-key-file"]) });
    const code = cmd.run(engine, line.positionals, flags, out);
    return typeof code === "number" ? code : 0;
  } catch (e) {
    const during = (e as { command?: unknown }).command;
    if (typeof during === "string") name = `encdisk ${during}`;
    printError(name, e, dir, phase === "args" && usage ? usage : undefined);
    const code = (e as EngineError | undefined)?.code;
    return phase === "args" || code === ErrorCodes.Usage || code === ErrorCodes.NotDecimal ? 2 : 1;
  } finally {
    try {
      engine?.close();
    } catch (e) {
      printError(name, e, dir);
    }
  }
}
