/**
 * The provider side of issue 7: fuzzing every resource's `check` hook (parts 3), a retried
 * `pulumi up` after an interrupted create (part 1), and permissions of what the provider
 * creates (part 4). Hooks are driven the way the dynamic-provider host drives them, through
 * `runtime.hook(resource, op, args)`.
 */
import fc from "fast-check";
import * as fs from "fs";
import * as path from "path";
import * as runtime from "../../provider/resources/runtime";
import { RESOURCE_SCHEMAS, UNKNOWN } from "../../provider/schemas";
import { openEngine } from "../../provider/engine";
import { tempEngine, type TempEngine } from "./helpers";

/** Inputs per resource: 400 under `npm test`, 10,000 in `npm run test:chaos` (PROVIDER_FUZZ_RUNS). */
const RUNS = Number(process.env.PROVIDER_FUZZ_RUNS ?? 400);

let te: TempEngine;
const cfg = (values: Record<string, string>) => ({ get: (k: string) => values[k.replace(/^encdisk:/, "")] });

beforeEach(() => {
  te = tempEngine("provider");
  runtime.reset();
  runtime.configure(cfg({ engineDir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile }));
});
afterEach(() => {
  runtime.reset();
  te.cleanup();
});

const hook = (resource: string, op: string, args: unknown[]) => runtime.hook(resource, op, args) as Promise<Record<string, unknown>>;

describe("provider hooks under bad input and retries", () => {
  test("check of every resource: never throws, every failure names a property and a reason, for fuzzed inputs", async () => {
    // An engine with a few real resources, so lookups inside check find (or miss) things.
    const e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    e.authorizeKms();
    const ins = e.createInstance({ zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" }).instanceId;
    const disk = e.createDisk({ zone: "ap-guangzhou-3", sizeGb: 10, encrypt: true }).diskId;
    const snap = e.createSnapshot({ diskId: disk }).snapshotId;
    e.close();
    const ids = fc.constantFrom<unknown>(ins, disk, snap, "disk-00000000", "snap-zzzzzzzz", "ins-", "att-00000000");
    const junk = fc.oneof(fc.anything({ maxDepth: 2 }), fc.string({ unit: "grapheme", maxLength: 70 }), fc.integer(), fc.double(), ids, fc.constantFrom<unknown>(null, "", -1, 0, 1.5, 32001, true, [], {}, UNKNOWN, [UNKNOWN], { a: UNKNOWN }));
    const counts: string[] = [];
    for (const schema of RESOURCE_SCHEMAS) {
      const name = schema.name;
      const keys = Object.keys(schema.inputs.shape);
      const news = fc.oneof(fc.dictionary(fc.constantFrom(...keys, "bogus", "__proto__x"), junk, { maxKeys: keys.length + 1 }), fc.record(Object.fromEntries(keys.map((k) => [k, junk])), { requiredKeys: [] }));
      const olds = fc.oneof(fc.constant({}), news);
      let runs = 0;
      let failures = 0;
      await fc.assert(
        fc.asyncProperty(olds, news, async (o, n) => {
          runs++;
          const r = (await hook(name, "check", [o, n])) as { inputs?: unknown; failures?: { property?: unknown; reason?: unknown }[] };
          expect(r && typeof r === "object").toBe(true);
          for (const f of r.failures ?? []) {
            failures++;
            expect(typeof f.property).toBe("string");
            expect((f.property as string).length).toBeGreaterThan(0);
            expect(typeof f.reason).toBe("string");
            expect((f.reason as string).length).toBeGreaterThan(0);
            expect(f.reason).not.toMatch(/\n\s+at /);
            // The property is an input the program set or one of the resource's inputs.
            const root = (f.property as string).split(/[.[]/)[0];
            expect([...keys, ...Object.keys(n as object)]).toContain(root);
          }
        }),
        { numRuns: RUNS, seed: 11 },
      );
      counts.push(`${name}: ${runs} inputs, ${failures} failures reported`);
    }
    // eslint-disable-next-line no-console
    console.log(`provider check fuzzing:\n  ${counts.join("\n  ")}`);
  });

  test.failing("D14: a create interrupted before Pulumi recorded it, then retried (check + create again), leaves one disk, not two", async () => {
    await hook("KmsAuthorization", "create", [{}]);
    const news = { zone: "ap-guangzhou-3", sizeGb: 10, encrypt: true, name: "data" };
    const first = (await hook("EncryptedDisk", "check", [{}, news])) as { inputs: Record<string, unknown> };
    await hook("EncryptedDisk", "create", [first.inputs]);
    // The process died here: the state never got the id. The next `pulumi up` checks and creates again.
    const again = (await hook("EncryptedDisk", "check", [{}, news])) as { inputs: Record<string, unknown> };
    await hook("EncryptedDisk", "create", [again.inputs]);
    const e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    try {
      expect(e.listDisks().length).toBe(1);
    } finally {
      e.close();
    }
  });

  test("D15: K4: the engine directory the provider creates is 0700, not left to the umask", async () => {
    await hook("KmsAuthorization", "create", [{}]);
    expect(fs.statSync(te.dir).mode & 0o777).toBe(0o700);
  });

  test("K4: nothing the provider returns for Pulumi's state holds key material", async () => {
    await hook("KmsAuthorization", "create", [{}]);
    const ins = await hook("Instance", "create", [{ zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" }]);
    const disk = await hook("EncryptedDisk", "create", [{ zone: "ap-guangzhou-3", sizeGb: 10, encrypt: true }]);
    const att = await hook("Attachment", "create", [{ diskId: disk.id, instanceId: ins.id }]);
    const snap = await hook("Snapshot", "create", [{ diskId: disk.id }]);
    const state = JSON.stringify([ins, disk, att, snap]);
    const e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    const root = fs.readFileSync(te.kmsRootKeyFile, "utf8").trim();
    const psk = fs.readFileSync((att.outs as { pskFile: string }).pskFile, "utf8").trim().split(":")[1];
    e.close();
    for (const secret of [root, psk, Buffer.from(root, "hex").toString("base64"), Buffer.from(psk, "hex").toString("base64")]) expect(state).not.toContain(secret);
    expect(path.isAbsolute((att.outs as { pskFile: string }).pskFile)).toBe(true);
  });
});
