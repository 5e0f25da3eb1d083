/**
 * Secrets (issue 7, part 4). After a full scenario (encrypted disks, snapshots, clones,
 * migration both ways, attachments, rollback, writes of known patterns) every byte under the
 * engine directory is scanned for: the KMS root key, every region's CMK and DK, every lineage
 * working key (each raw, hex and base64), and the plaintext written to encrypted disks. Key
 * material is recovered independently of the engine (root key file -> unwrap CMK -> unwrap
 * DK -> HKDF), so the scan does not trust the code it checks. Then: permissions, tamper
 * detection, and wrong/missing root keys.
 */
import Database from "better-sqlite3";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { EngineError, openEngine, type Engine } from "../../provider/engine";
import { tempEngine, type TempEngine } from "./helpers";

delete process.env.ENCDISK_KMS_ROOT_KEY;
delete process.env.ENCDISK_KMS_ROOT_KEY_FILE;

const ZONE = "ap-guangzhou-3";
const MiB = 1024 * 1024;

/** Plaintext that must never reach storage: a random, non-repeating 1 MiB block (and a repeated 32-byte motif). */
const SECRET_DATA = crypto.randomBytes(MiB);
const MOTIF = crypto.randomBytes(32);
const MOTIF_DATA = Buffer.alloc(300_000, MOTIF);
/** Written only to a plain disk: the scanner must find it (positive control). */
const PLAIN_DATA = crypto.randomBytes(200_000);

function unwrap(key: Buffer, blob: Buffer, aad: string): Buffer {
  const d = crypto.createDecipheriv("aes-256-gcm", key, blob.subarray(0, 12));
  d.setAAD(Buffer.from(aad, "utf8"));
  d.setAuthTag(blob.subarray(12, 28));
  return Buffer.concat([d.update(blob.subarray(28)), d.final()]);
}

/** Every secret of the directory, recovered from the root key file and the state database alone. */
function recoverSecrets(te: TempEngine): { label: string; bytes: Buffer }[] {
  const root = Buffer.from(fs.readFileSync(te.kmsRootKeyFile, "utf8").trim(), "hex");
  const db = new Database(path.join(te.dir, "state.db"), { readonly: true, fileMustExist: true });
  try {
    const out: { label: string; bytes: Buffer }[] = [{ label: "root key", bytes: root }];
    const keys = db.prepare("SELECT k.key_id, k.region, k.wrapped_material, d.wrapped_dk FROM kms_keys k JOIN data_keys d ON d.key_id = k.key_id").all() as { key_id: string; region: string; wrapped_material: Buffer; wrapped_dk: Buffer }[];
    const dks = new Map<string, Buffer>();
    for (const k of keys) {
      const cmk = unwrap(root, k.wrapped_material, `encdisk/cmk/v1|${k.region}|${k.key_id}`);
      const dk = unwrap(cmk, k.wrapped_dk, `encdisk/dk/v1|${k.region}|${k.key_id}|cbs-disk-encryption`);
      out.push({ label: `CMK of ${k.region}`, bytes: cmk }, { label: `DK of ${k.region}`, bytes: dk });
      dks.set(k.region, dk);
    }
    for (const l of db.prepare("SELECT lineage_id, region FROM lineages WHERE encrypted = 1").all() as { lineage_id: string; region: string }[]) {
      const wk = Buffer.from(crypto.hkdfSync("sha256", dks.get(l.region) as Buffer, Buffer.from(l.lineage_id), Buffer.from("encdisk/unit-key/v1"), 32));
      out.push({ label: `working key of ${l.lineage_id}`, bytes: wk });
    }
    return out;
  } finally {
    db.close();
  }
}

function walk(dir: string, fn: (file: string, st: fs.Stats) => void): void {
  fn(dir, fs.statSync(dir));
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) walk(full, fn);
    else fn(full, fs.statSync(full));
  }
}

/** Needles: each secret raw, hex and base64; 64-byte windows of the plaintexts. */
function needlesOf(secrets: { label: string; bytes: Buffer }[], plaintexts: { label: string; bytes: Buffer }[]): { label: string; bytes: Buffer }[] {
  const out: { label: string; bytes: Buffer }[] = [];
  for (const s of secrets) {
    out.push({ label: s.label, bytes: s.bytes }, { label: `${s.label} (hex)`, bytes: Buffer.from(s.bytes.toString("hex")) }, { label: `${s.label} (base64)`, bytes: Buffer.from(s.bytes.toString("base64")) });
  }
  for (const p of plaintexts) for (let off = 0; off + 64 <= p.bytes.length; off += Math.max(64, Math.floor(p.bytes.length / 16))) out.push({ label: `${p.label} @${off}`, bytes: p.bytes.subarray(off, off + 64) });
  return out;
}

function scan(dir: string, needles: { label: string; bytes: Buffer }[]): { files: number; bytes: number; found: string[] } {
  let files = 0;
  let bytes = 0;
  const found = new Set<string>();
  walk(dir, (f, st) => {
    if (!st.isFile()) return;
    files++;
    const data = fs.readFileSync(f);
    bytes += data.length;
    for (const n of needles) if (data.indexOf(n.bytes) >= 0) found.add(`${path.relative(dir, f)}: ${n.label}`);
  });
  return { files, bytes, found: [...found] };
}

let te: TempEngine;
let e: Engine;
afterEach(() => {
  e?.close();
  te?.cleanup();
});

/** The full scenario; returns ids needed by later checks. */
function scenario(): { encAtt: string; encDisk: string; plainAtt: string; ins: string } {
  e.authorizeKms();
  const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" }).instanceId;
  const e1 = e.createDisk({ zone: ZONE, sizeGb: 2, encrypt: true }).diskId;
  let a1 = e.attachDisk({ diskId: e1, instanceId: ins }).attachmentId;
  e.write(a1, 12_345, SECRET_DATA); // unaligned: partial head and tail units
  e.write(a1, 64 * MiB, MOTIF_DATA);
  e.flush(a1);
  const s1 = e.createSnapshot({ diskId: e1 }).snapshotId;
  e.write(a1, 12_345 + 1000, SECRET_DATA.subarray(1000, 5000)); // rewrite inside a unit (copy-on-write)
  e.detachDisk(a1);
  e.applySnapshot(s1, e1);
  a1 = e.attachDisk({ diskId: e1, instanceId: ins }).attachmentId;
  expect(e.read(a1, 12_345, SECRET_DATA.length).equals(SECRET_DATA)).toBe(true);
  const clone = e.createDisk({ zone: ZONE, sizeGb: 2, snapshotId: s1 }).diskId; // C2: encrypted
  const a2 = e.attachDisk({ diskId: clone, instanceId: ins }).attachmentId;
  e.write(a2, 100 * MiB + 7, MOTIF_DATA);
  e.resizeDisk(clone, 3);
  e.createImage({ name: "enc-image", snapshotIds: [s1] });
  // M1 both ways: encrypted -> plain copy (then deleted: its plaintext must go with it) and plain -> encrypted.
  e.detachDisk(a2);
  const plainCopy = e.migrateDisk({ sourceDiskId: clone, encrypt: false });
  e.deleteDisk(plainCopy.diskId);
  const plain = e.createDisk({ zone: ZONE, sizeGb: 1 }).diskId;
  const pa = e.attachDisk({ diskId: plain, instanceId: ins }).attachmentId;
  e.write(pa, 0, PLAIN_DATA);
  const tmp = e.createDisk({ zone: ZONE, sizeGb: 1 }).diskId;
  const ta = e.attachDisk({ diskId: tmp, instanceId: ins }).attachmentId;
  e.write(ta, 0, SECRET_DATA.subarray(0, 300_000));
  e.detachDisk(ta);
  const migrated = e.migrateDisk({ sourceDiskId: tmp, encrypt: true });
  e.deleteDisk(tmp);
  const ma = e.attachDisk({ diskId: migrated.diskId, instanceId: ins }).attachmentId;
  expect(e.read(ma, 0, 300_000).equals(SECRET_DATA.subarray(0, 300_000))).toBe(true);
  // Another region, so there are two CMKs and DKs to look for.
  const sh = e.createDisk({ zone: "ap-shanghai-2", sizeGb: 1, encrypt: true }).diskId;
  const shIns = e.createInstance({ zone: "ap-shanghai-2", instanceType: "S5.SMALL1" }).instanceId;
  const sha = e.attachDisk({ diskId: sh, instanceId: shIns }).attachmentId;
  e.write(sha, 999, MOTIF_DATA);
  e.flush(sha);
  return { encAtt: a1, encDisk: e1, plainAtt: pa, ins };
}

describe("secrets at rest", () => {
  test("K4: after a full scenario no key material and no plaintext of an encrypted disk is anywhere under the engine dir (independent scan of every byte)", () => {
    te = tempEngine("secrets");
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    scenario();
    const secrets = recoverSecrets(te);
    expect(secrets.filter((s) => s.label.startsWith("DK")).length).toBe(2);
    const plaintexts = [
      { label: "plaintext written to an encrypted disk", bytes: SECRET_DATA },
      { label: "repeated motif written to encrypted disks", bytes: MOTIF_DATA.subarray(0, 4096) },
    ];
    // While the engine is open (WAL and -shm present) and again after close.
    for (const phase of ["open", "closed"]) {
      if (phase === "closed") e.close();
      const r = scan(te.dir, needlesOf(secrets, plaintexts));
      // eslint-disable-next-line no-console
      console.log(`secrets scan (${phase}): ${r.files} files, ${r.bytes} bytes, ${r.found.length} findings`);
      expect(r.found).toEqual([]);
      expect(r.bytes).toBeGreaterThan(MiB);
    }
    // Positive control: the scanner does find plaintext that was written to a plain disk.
    const control = scan(te.dir, needlesOf([], [{ label: "plain-disk data", bytes: PLAIN_DATA }]));
    expect(control.found.length).toBeGreaterThan(0);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    expect(e.verifyNoKeyMaterial().findings).toEqual([]);
    expect(e.check().problems).toEqual([]);
  });

  test("K4: files under the engine dir are 0600 and directories 0700; the root key file is 0600 in a 0700 dir", () => {
    te = tempEngine("perms");
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    scenario();
    const bad: string[] = [];
    walk(te.dir, (f, st) => {
      const mode = st.mode & 0o777;
      if (st.isDirectory() ? mode !== 0o700 : mode !== 0o600) bad.push(`${path.relative(te.root, f) || "."} ${mode.toString(8)}`);
    });
    expect(bad).toEqual([]);
    expect(fs.statSync(te.kmsRootKeyFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(te.kmsRootKeyFile)).mode & 0o777).toBe(0o700);
  });

  test("W1: a tampered ciphertext unit reads back as DataCorruption.UnitAuthenticationFailed; other units still read", () => {
    te = tempEngine("tamper");
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    const { encAtt, encDisk } = scenario();
    e.close();
    const db = new Database(path.join(te.dir, "state.db"), { readonly: true });
    const row = db.prepare("SELECT u.lineage_id, u.slot FROM units u WHERE u.owner_id = ? AND u.idx = 1").get(encDisk) as { lineage_id: string; slot: number };
    db.close();
    const file = path.join(te.dir, "blocks", `${row.lineage_id}.dat`);
    const fd = fs.openSync(file, "r+");
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, row.slot * 65536 + 100);
    b[0] ^= 0x01;
    fs.writeSync(fd, b, 0, 1, row.slot * 65536 + 100);
    fs.closeSync(fd);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    let err: unknown;
    try {
      e.read(encAtt, 65536 + 10, 100);
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe("DataCorruption.UnitAuthenticationFailed");
    // The unit before it is intact.
    expect(e.read(encAtt, 12_345, 1000).equals(SECRET_DATA.subarray(0, 1000))).toBe(true);
  });

  test("K4: a wrong KMS root key gives KmsRootKey.Mismatch, a missing one KmsRootKey.Missing; nothing is destroyed or charged, and the right key reads everything again", () => {
    te = tempEngine("rootkey");
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    const { encAtt, encDisk, ins } = scenario();
    const auditBefore = e.auditLog().length;
    const balanceBefore = e.getAccount().balanceMicros;
    const disksBefore = e.listDisks().map((d) => d.diskId).sort();
    e.close();
    const rootBytes = fs.readFileSync(te.kmsRootKeyFile);

    const attempts = (eng: Engine) => [
      () => eng.read(encAtt, 12_345, 4096),
      () => eng.write(encAtt, 0, Buffer.alloc(10, 1)),
      () => eng.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true }),
      () => {
        eng.detachDisk(encAtt);
        eng.attachDisk({ diskId: encDisk, instanceId: ins });
      },
      () => eng.createSnapshot({ diskId: encDisk }),
      () => eng.verifyNoKeyMaterial(),
    ];
    const codes = (eng: Engine) =>
      attempts(eng).map((f) => {
        try {
          f();
          return "succeeded";
        } catch (x) {
          return x instanceof EngineError ? x.code : `${(x as Error).name}: ${(x as Error).message}`;
        }
      });

    // Wrong key.
    const wrongFile = path.join(te.root, "wrong", "kms-root.key");
    fs.mkdirSync(path.dirname(wrongFile), { mode: 0o700 });
    fs.writeFileSync(wrongFile, crypto.randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
    e = openEngine({ dir: te.dir, kmsRootKeyFile: wrongFile });
    const wrong = codes(e);
    // The detach half of attempt 4 is a KMS call too and must fail with the key error as well.
    expect(wrong.every((c) => c === "KmsRootKey.Mismatch")).toBe(true);
    e.close();

    // Missing key: reported, and never silently replaced by a new one.
    const missing = path.join(te.root, "nowhere", "kms-root.key");
    e = openEngine({ dir: te.dir, kmsRootKeyFile: missing });
    expect(codes(e).every((c) => c === "KmsRootKey.Missing")).toBe(true);
    expect(fs.existsSync(missing)).toBe(false);
    e.close();

    // Garbage in the key file.
    const garbage = path.join(te.root, "wrong", "garbage.key");
    fs.writeFileSync(garbage, "not a key\n", { mode: 0o600 });
    e = openEngine({ dir: te.dir, kmsRootKeyFile: garbage });
    expect(codes(e).every((c) => c === "KmsRootKey.Missing")).toBe(true);
    e.close();

    // Nothing destroyed, nothing charged; the right key reads everything.
    expect(fs.readFileSync(te.kmsRootKeyFile).equals(rootBytes)).toBe(true);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    expect(e.auditLog().length).toBe(auditBefore);
    expect(e.getAccount().balanceMicros).toBe(balanceBefore);
    expect(e.listDisks().map((d) => d.diskId).sort()).toEqual(disksBefore);
    expect(e.read(encAtt, 12_345, SECRET_DATA.length).equals(SECRET_DATA)).toBe(true);
    expect(e.check().problems).toEqual([]);
  });

  test("D18: after detach (and close), the attachment's TLS pre-shared key is nowhere under the engine dir (W2 key hygiene)", () => {
    te = tempEngine("psk");
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    e.authorizeKms();
    const d = e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true });
    const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    const psk = Buffer.from(fs.readFileSync(a.pskFile, "utf8").trim().split(":")[1], "hex");
    e.detachDisk(a.attachmentId);
    e.close();
    expect(scan(te.dir, needlesOf([{ label: "PSK of a detached attachment", bytes: psk }], [])).found).toEqual([]);
  });
});
