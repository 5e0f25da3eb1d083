/**
 * D9: a full host file system. The engine directory lives on a small tmpfs (mounted here as
 * root; skipped, loudly, where mounting is not permitted). A write that does not fit fails
 * with ResourceInsufficient.DiskFull and gives its space back; detach and delete still work
 * (the reserve file); NBD clients see ENOSPC, not EIO.
 */
import { execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import Database from "better-sqlite3";
import { ErrorCodes, openEngine, type Engine } from "../../provider/engine";
import { RESERVE_BYTES } from "../../provider/engine/engine";
import { EngineBackend } from "../../provider/engine/nbd/engine-backend";
import { NbdServer } from "../../provider/engine/nbd/server";
import { clientAccess } from "../../provider/engine/nbd/uri";
import { freePort, haveTools, run } from "../nbd/helpers";
import { errorOf, ZONE } from "./helpers";

const MiB = 1024 * 1024;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-full-"));
const mnt = path.join(root, "fs");
fs.mkdirSync(mnt);
let mounted = false;
let why = "";
try {
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", mnt], { stdio: "pipe" });
  mounted = true;
} catch (e) {
  why = String((e as { stderr?: Buffer }).stderr ?? e).trim();
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED D9 full-disk tests: cannot mount a 24 MiB tmpfs here (${why}); run as root in a container that permits mount`);
}
const d9 = mounted ? describe : describe.skip;

afterAll(() => {
  if (mounted) spawnSync("umount", ["-l", mnt]);
  fs.rmSync(root, { recursive: true, force: true });
});

d9("D9: a full host disk is recoverable through the engine", () => {
  test("D9: a write past the free space fails with ResourceInsufficient.DiskFull and gives its space back; NBD answers ENOSPC; detach and delete work on the full disk; the reserve comes back", async () => {
    const dir = path.join(mnt, "engine");
    const rootKey = crypto.randomBytes(32);
    const e: Engine = openEngine({ dir, kmsRootKey: rootKey });
    const port = await freePort();
    let server: NbdServer | undefined;
    try {
      expect(fs.statSync(path.join(dir, "reserve")).size).toBe(RESERVE_BYTES);
      e.authorizeKms();
      const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
      const disk = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
      const att = e.attachDisk({ diskId: disk.diskId, instanceId: ins.instanceId });
      const chunk = crypto.randomBytes(MiB);
      let written = 0;
      let err: { code: string; message: string } | undefined;
      for (; written < 64; written++) {
        try {
          e.write(att.attachmentId, written * MiB, chunk);
        } catch (x) {
          err = x as { code: string; message: string };
          break;
        }
      }
      expect(err).toMatchObject({ code: ErrorCodes.DiskFull });
      expect(err?.message).toMatch(/is full .*delete disks or snapshots/);
      expect(written).toBeGreaterThan(4);
      // the failed write's ciphertext is gone: the block file ends at the last committed slot
      const lineage = new Database(path.join(dir, "state.db"), { readonly: true }).prepare("SELECT lineage_id, next_slot FROM lineages").get() as { lineage_id: string; next_slot: number };
      expect(fs.statSync(path.join(dir, "blocks", `${lineage.lineage_id}.dat`)).size).toBeLessThanOrEqual(lineage.next_slot * 65536);
      expect(errorOf(() => e.write(att.attachmentId, written * MiB, chunk))).toMatchObject({ code: ErrorCodes.DiskFull });
      // what was acknowledged reads back
      expect(e.read(att.attachmentId, 0, MiB).equals(chunk)).toBe(true);

      // a real NBD client writing into the full disk gets ENOSPC, not EIO
      const tools = haveTools(["nbdcopy"]);
      if (tools.ok) {
        server = new NbdServer({ backend: new EngineBackend(openEngine({ dir, kmsRootKey: rootKey, nbdAddress: `127.0.0.1:${port}` })), port, pollIntervalMs: 100, log: () => undefined });
        await server.listen();
        const a = { ...att, endpoint: `nbds://${att.attachmentId}@127.0.0.1:${port}/${att.attachmentId}` };
        const image = path.join(root, "image.raw");
        fs.writeFileSync(image, crypto.randomBytes(8 * MiB));
        // (asynchronously: the server runs in this process)
        const r = await run("nbdcopy", ["--destination-is-zero", image, clientAccess(a).libnbdUri], { timeoutMs: 60_000 });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/No space left on device/);
        expect(r.stderr).not.toMatch(/Input\/output error/);
        await server.close();
        server = undefined;
      } else {
        // eslint-disable-next-line no-console
        console.warn(`SKIPPED the NBD part of D9: missing ${tools.missing.join(", ")}`);
      }

      // another program takes every byte left (the host disk really is full)
      const filler = fs.openSync(path.join(mnt, "filler"), "w");
      const block = Buffer.alloc(4096, 1);
      try {
        for (let at = 0; ; at += block.length) fs.writeSync(filler, block, 0, block.length, at);
      } catch (x) {
        expect((x as { code?: string }).code).toBe("ENOSPC");
      } finally {
        fs.closeSync(filler);
      }
      expect(errorOf(() => e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true }))).toMatchObject({ code: ErrorCodes.DiskFull });

      // freeing works on the full disk: detach, then delete
      e.detachDisk(att.attachmentId);
      e.deleteDisk(disk.diskId);
      expect(fs.readdirSync(path.join(dir, "blocks"))).toEqual([]);
      expect(fs.statSync(path.join(dir, "reserve")).size).toBe(RESERVE_BYTES);
      expect(e.check().problems).toEqual([]);
      // and the engine works again
      const d2 = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
      const a2 = e.attachDisk({ diskId: d2.diskId, instanceId: ins.instanceId });
      e.write(a2.attachmentId, 0, chunk);
      expect(e.read(a2.attachmentId, 0, MiB).equals(chunk)).toBe(true);
    } finally {
      await server?.close();
      e.close();
    }
  }, 120_000);
});
