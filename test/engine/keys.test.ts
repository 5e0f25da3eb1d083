/**
 * Key hygiene and secrets (issue 12): D11 (verify finds every encoding), D12 (no root key file
 * inside the engine directory), D6 (state.db alone computes no NBD PSK), D4 (key files follow
 * the directory: symlinks, moves, and `check` of a key file outside it).
 */
import Database from "better-sqlite3";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { ErrorCodes, openEngine } from "../../provider/engine";
import { serveCommand } from "../../provider/engine/cli/serve";
import { forgetEnvRootKey } from "../../provider/engine/kms/rootkey";
import { freePort, nbdsUri, run, waitForPort } from "../nbd/helpers";
import { requireTools } from "../support/requireTools";
import { errorOf, filesUnder, tempEngine, ZONE, type TestEngine } from "./helpers";

delete process.env.ENCDISK_KMS_ROOT_KEY;
delete process.env.ENCDISK_KMS_ROOT_KEY_FILE;

let t: TestEngine;
beforeEach(() => {
  t = tempEngine();
  t.engine.authorizeKms();
});
afterEach(() => t.cleanup());

const rootKey = () => Buffer.from(fs.readFileSync(t.keyFile, "utf8").trim(), "hex");
const pskOfFile = (file: string) => fs.readFileSync(file, "utf8").trim().split(":")[1];

function attachEncrypted(): { attachmentId: string; pskFile: string; diskId: string } {
  const d = t.engine.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true });
  const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
  return { attachmentId: a.attachmentId, pskFile: a.pskFile, diskId: d.diskId };
}

/** Every bytes of the SQLite files of the directory (db, WAL, shm). */
function stateBytes(dir: string): Buffer {
  return Buffer.concat(["state.db", "state.db-wal", "state.db-shm"].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
}

describe("D11: encdisk verify finds key material in every common encoding", () => {
  const encodings: [string, (k: Buffer) => string | Buffer][] = [
    ["raw", (k) => k],
    ["hex", (k) => k.toString("hex")],
    ["upper-case hex", (k) => k.toString("hex").toUpperCase()],
    ["base64", (k) => k.toString("base64")],
    ["base64 without padding", (k) => k.toString("base64").replace(/=+$/, "")],
    ["base64url", (k) => k.toString("base64url")],
  ];
  for (const [name, enc] of encodings) {
    test(`D11: the root key written as ${name} inside the engine directory is reported`, () => {
      attachEncrypted();
      expect(t.engine.verifyNoKeyMaterial().findings).toEqual([]);
      const leak = path.join(t.dir, "blocks", "leak.txt");
      fs.writeFileSync(leak, Buffer.concat([Buffer.from("prefix:"), Buffer.from(enc(rootKey())), Buffer.from(":suffix\n")]));
      const findings = t.engine.verifyNoKeyMaterial().findings;
      expect(findings).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`leak\\.txt: contains KMS root key`))]));
      fs.rmSync(leak);
    });
  }
});

describe("D12: the KMS root key file never lives inside the engine directory", () => {
  test("D12: creating a root key file inside the engine directory is refused, by its path or through a symlink", () => {
    const inside = path.join(t.dir, "keys", "root.key");
    const fresh = path.join(t.root, "fresh-engine");
    const e = openEngine({ dir: fresh, kmsRootKeyFile: path.join(fresh, "root.key") });
    try {
      e.authorizeKms();
      const err = errorOf(() => e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true }));
      expect(err).toMatchObject({ code: ErrorCodes.KmsRootKeyInsideEngineDir, rule: "K4" });
      expect(err.message).toMatch(/move the file outside it .*ENCDISK_KMS_ROOT_KEY_FILE/);
      expect(fs.existsSync(path.join(fresh, "root.key"))).toBe(false);
      expect(e.listDisks()).toEqual([]);
    } finally {
      e.close();
    }
    // a symlinked directory outside that points into the engine directory
    fs.mkdirSync(path.join(t.dir, "keys"));
    fs.symlinkSync(path.join(t.dir, "keys"), path.join(t.root, "looks-outside"));
    t.reopen({ kmsRootKeyFile: path.join(t.root, "looks-outside", "root.key") });
    const before = t.engine.listDisks().length;
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true })).code).toBe(ErrorCodes.KmsRootKeyInsideEngineDir);
    expect(fs.existsSync(inside)).toBe(false);
    expect(t.engine.listDisks().length).toBe(before);
  });

  test("D12: an existing root key file inside the engine directory (the engine opened through a symlink) is refused, nothing changes", () => {
    attachEncrypted();
    const inside = path.join(t.dir, "root.key");
    fs.copyFileSync(t.keyFile, inside);
    fs.symlinkSync(t.dir, path.join(t.root, "alias"));
    t.engine.close();
    t.engine = openEngine({ dir: path.join(t.root, "alias"), kmsRootKeyFile: inside });
    const disks = t.engine.listDisks().length;
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true })).code).toBe(ErrorCodes.KmsRootKeyInsideEngineDir);
    expect(t.engine.listDisks().length).toBe(disks);
  });
});

describe("D6: a copy of state.db alone computes no NBD PSK", () => {
  test("D6: no value in state.db (db, WAL) is a secret the attachment's PSK is computed from; the PSK survives a reopen", () => {
    const a = attachEncrypted();
    const psk = pskOfFile(a.pskFile);
    const db = new Database(path.join(t.dir, "state.db"), { readonly: true });
    const meta = db.prepare("SELECT k, v FROM meta").all() as { k: string; v: string }[];
    db.close();
    expect(meta.map((m) => m.k)).not.toContain("nbd_psk_secret");
    expect(meta.map((m) => m.k)).toContain("nbd_psk_secret_wrapped");
    const hmac = (key: Buffer) => crypto.createHmac("sha256", key).update(`encdisk/nbd-psk/v1|${a.attachmentId}`).digest("hex");
    // every meta value, and every 32-byte window of the SQLite files, as an HMAC key
    for (const m of meta) for (const key of [Buffer.from(m.v, "hex"), Buffer.from(m.v)]) expect(hmac(key)).not.toBe(psk);
    const bytes = stateBytes(t.dir);
    let tried = 0;
    for (let off = 0; off + 32 <= bytes.length; off++) {
      if (bytes.readBigUInt64LE(off) === 0n) continue; // zero runs are no key
      expect(hmac(bytes.subarray(off, off + 32)) === psk).toBe(false);
      tried++;
    }
    expect(tried).toBeGreaterThan(1000);
    // the secret itself is searched for by verify (raw and encoded)
    expect(t.engine.verifyNoKeyMaterial().findings).toEqual([]);
    fs.rmSync(a.pskFile);
    t.reopen(); // rewrites the missing key file from the wrapped secret
    expect(pskOfFile(a.pskFile)).toBe(psk);
  });

  test("D6: a directory of an older release (plaintext nbd_psk_secret, absolute psk_file) keeps every PSK and loses the plaintext", () => {
    const a = attachEncrypted();
    t.engine.close();
    // turn the directory into what the previous release wrote
    const legacy = crypto.randomBytes(32).toString("hex");
    const legacyPsk = crypto.createHmac("sha256", Buffer.from(legacy, "hex")).update(`encdisk/nbd-psk/v1|${a.attachmentId}`).digest("hex");
    const db = new Database(path.join(t.dir, "state.db"));
    db.prepare("DELETE FROM meta WHERE k = 'nbd_psk_secret_wrapped'").run();
    db.prepare("INSERT INTO meta (k, v) VALUES ('nbd_psk_secret', ?)").run(legacy);
    db.prepare("UPDATE attachments SET psk_file = ?").run(path.join(t.dir, "nbd", `${a.attachmentId}.psk`));
    db.prepare("DELETE FROM schema_migrations WHERE version >= 5").run(); // the key-file migration runs again
    db.close();
    fs.writeFileSync(a.pskFile, `${a.attachmentId}:${legacyPsk}\n`, { mode: 0o600 });
    expect(stateBytes(t.dir).includes(Buffer.from(legacy))).toBe(true); // the control: the plaintext is there

    t.engine = openEngine({ dir: t.dir, kmsRootKeyFile: t.keyFile });
    expect(stateBytes(t.dir).includes(Buffer.from(legacy))).toBe(false);
    expect(stateBytes(t.dir).includes(Buffer.from(legacy, "hex"))).toBe(false);
    const db2 = new Database(path.join(t.dir, "state.db"), { readonly: true });
    expect(db2.prepare("SELECT k FROM meta WHERE k LIKE 'nbd_psk%'").all()).toEqual([{ k: "nbd_psk_secret_wrapped" }]);
    expect(db2.prepare("SELECT psk_file FROM attachments").all()).toEqual([{ psk_file: `nbd/${a.attachmentId}.psk` }]);
    db2.close();
    // the existing attachment keeps its PSK: rewritten from the wrapped secret, it is the old one
    fs.rmSync(a.pskFile);
    t.reopen();
    expect(pskOfFile(a.pskFile)).toBe(legacyPsk);
    expect(t.engine.check().problems).toEqual([]);
  });
});

describe("D4: key files follow the engine directory", () => {
  test("D4: opening through a symlink deletes no key file and names the real path", () => {
    const a = attachEncrypted();
    const link = path.join(t.root, "link");
    fs.symlinkSync(t.dir, link);
    t.engine.close();
    t.engine = openEngine({ dir: link, kmsRootKeyFile: t.keyFile });
    expect(fs.existsSync(a.pskFile)).toBe(true);
    expect(t.engine.getAttachment(a.attachmentId).pskFile).toBe(path.join(fs.realpathSync(t.dir), "nbd", `${a.attachmentId}.psk`));
    expect(t.engine.check().problems).toEqual([]);
    expect(fs.existsSync(a.pskFile)).toBe(true);
  });

  test("D4: a moved directory has its key files at the new place and nothing is written at the old one", () => {
    const a = attachEncrypted();
    const psk = pskOfFile(a.pskFile);
    t.engine.close();
    const moved = path.join(t.root, "moved");
    fs.renameSync(t.dir, moved);
    fs.rmSync(path.join(moved, "nbd", `${a.attachmentId}.psk`)); // lost on the way: rewritten inside
    t.engine = openEngine({ dir: moved, kmsRootKeyFile: t.keyFile });
    const att = t.engine.getAttachment(a.attachmentId);
    expect(att.pskFile).toBe(path.join(moved, "nbd", `${a.attachmentId}.psk`));
    expect(pskOfFile(att.pskFile)).toBe(psk);
    expect(fs.existsSync(t.dir)).toBe(false);
    expect(t.engine.check().problems).toEqual([]);
    t.engine.detachDisk(a.attachmentId);
    expect(filesUnder(path.join(moved, "nbd"))).toEqual([]);
    t.engine.close();
    fs.renameSync(moved, t.dir); // for cleanup
    t.engine = openEngine({ dir: t.dir, kmsRootKeyFile: t.keyFile });
  });

  test("D4: check reports an attachment whose key file is outside the engine directory, and nothing writes there", () => {
    const a = attachEncrypted();
    t.engine.close();
    const outside = path.join(t.root, "elsewhere", `${a.attachmentId}.psk`);
    const db = new Database(path.join(t.dir, "state.db"));
    db.prepare("UPDATE attachments SET psk_file = ?").run(outside);
    db.close();
    t.engine = openEngine({ dir: t.dir, kmsRootKeyFile: t.keyFile });
    expect(t.engine.check().problems).toEqual([expect.stringMatching(new RegExp(`attachment ${a.attachmentId} names a key file outside the engine directory`))]);
    expect(fs.existsSync(path.dirname(outside))).toBe(false);
  });

  requireTools(["nbdinfo"], "D4 real-client test").test("D4: a client connects with the key file of a directory served through a symlink", async () => {
    const a = attachEncrypted();
    const link = path.join(t.root, "served-link");
    fs.symlinkSync(t.dir, link);
    const port = await freePort();
    const out = jest.spyOn(process.stdout, "write").mockImplementation(() => true);
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((r) => (stop = r));
    const done = serveCommand(["--dir", link, "--listen", `127.0.0.1:${port}`, "--kms-root-key-file", t.keyFile, "--quiet"], { stop: stopped });
    try {
      await waitForPort(port);
      const r = await run("nbdinfo", ["--size", nbdsUri(port, a.attachmentId, path.join(link, "nbd", `${a.attachmentId}.psk`))]);
      expect(r.stdout.trim()).toBe(String(1024 ** 3));
      expect(fs.existsSync(a.pskFile)).toBe(true);
    } finally {
      stop();
      await done;
      out.mockRestore();
    }
  });
});

describe("D5: ENCDISK_KMS_ROOT_KEY", () => {
  afterEach(() => {
    delete process.env.ENCDISK_KMS_ROOT_KEY;
    forgetEnvRootKey();
  });

  test("D5: the variable is taken once and removed from the environment; later engines of the process keep using the key", () => {
    const hex = crypto.randomBytes(32).toString("hex").toUpperCase();
    process.env.ENCDISK_KMS_ROOT_KEY = hex;
    const dir = path.join(t.root, "env-engine");
    const e = openEngine({ dir });
    e.authorizeKms();
    e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true });
    e.close();
    expect(process.env.ENCDISK_KMS_ROOT_KEY).toBeUndefined();
    const again = openEngine({ dir });
    try {
      expect(again.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true }).encrypted).toBe(true); // Decrypt under the same root key
      const findings = again.verifyNoKeyMaterial();
      expect(findings.findings).toEqual([]);
    } finally {
      again.close();
    }
  });

  test("D5: a bad ENCDISK_KMS_ROOT_KEY stays refused after it left the environment (never a fall-through to a key file)", () => {
    process.env.ENCDISK_KMS_ROOT_KEY = "not-hex";
    const e = openEngine({ dir: path.join(t.root, "bad-env"), kmsRootKeyFile: path.join(t.root, "would-be-made.key") });
    try {
      e.authorizeKms();
      for (let i = 0; i < 2; i++) expect(errorOf(() => e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true })).code).toBe(ErrorCodes.KmsRootKeyMissing);
      expect(process.env.ENCDISK_KMS_ROOT_KEY).toBeUndefined();
      expect(fs.existsSync(path.join(t.root, "would-be-made.key"))).toBe(false);
    } finally {
      e.close();
    }
  });
});
