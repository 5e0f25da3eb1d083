/**
 * P3 as a property: for random sequences of program changes to an EncryptedDisk, what check
 * and diff announce is what happens. When check passes: a planned update succeeds and leaves
 * the disk as stated; a planned replacement is a new disk as stated; "no change" means the
 * disk already is as stated. Encryption is never planned as a replacement, and never changes.
 */
import fc from "fast-check";
import { disks, kms, sandbox, ZONE, OTHER_ZONE } from "./helpers";

type Inputs = Record<string, unknown>;

const change = fc.oneof(
  fc.record({ sizeGb: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ encrypt: fc.boolean() }),
  fc.record({ name: fc.constantFrom("a", "b", "c") }),
  fc.record({ tags: fc.dictionary(fc.constantFrom("env", "team"), fc.constantFrom("x", "y"), { maxKeys: 2 }) }),
  fc.record({ zone: fc.constantFrom(ZONE, OTHER_ZONE) }),
  fc.record({ diskType: fc.constantFrom("CLOUD_PREMIUM", "CLOUD_SSD", "LOCAL_SSD") }),
  fc.constant({ drop: "name" as const }),
);

test("P3: check and diff tell the truth about update, replace and refuse", async () => {
  await fc.assert(
    fc.asyncProperty(fc.boolean(), fc.array(change, { minLength: 1, maxLength: 6 }), async (encrypt, changes) => {
      const sb = sandbox();
      try {
        await kms.create({});
        let inputs: Inputs = { zone: ZONE, sizeGb: 10, encrypt };
        let { id, outs } = await disks.up(inputs);
        const encrypted = outs.encrypted;
        for (const c of changes) {
          const news: Inputs = { ...inputs };
          if ("drop" in c) delete news[c.drop];
          else Object.assign(news, c);
          const checked = await disks.check(inputs, news);
          if (checked.failures.length > 0) {
            for (const f of checked.failures) expect(Object.keys(news)).toContain(f.property);
            continue; // refused at preview: the program is not applied
          }
          const d = await disks.diff(id, outs, checked.inputs);
          expect(d.replaces ?? []).not.toContain("encrypt");
          if ((d.replaces ?? []).length > 0) {
            const created = await disks.create(checked.inputs);
            await disks.delete(id, outs);
            ({ id, outs } = created);
          } else if (d.changes) {
            outs = (await disks.update(id, outs, checked.inputs)).outs;
          }
          // Whatever was planned, the disk now is as the program states.
          for (const k of ["sizeGb", "name", "zone", "diskType", "tags"]) if (news[k] !== undefined) expect(outs[k]).toEqual(news[k]);
          expect(outs.encrypted).toBe(encrypted);
          expect(sb.engine().getDisk(id)).toMatchObject({ sizeGb: outs.sizeGb, encrypted });
          inputs = news;
        }
      } finally {
        sb.cleanup();
      }
    }),
    { numRuns: 40 },
  );
});
