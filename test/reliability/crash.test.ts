/**
 * Crash injection (issue 7, part 1), a small sample of each operation kind under `npm test`:
 * CRASH_SAMPLE (default 4) SIGKILLs per kind at random moments. `npm run test:chaos` runs 100+
 * per kind (scripts/chaos/run.ts). The workers and the harness run compiled, from dist/.
 */
import { distScript } from "./helpers";
import type * as CrashModule from "../../scripts/chaos/crash";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const crash = require(distScript("crash.js")) as typeof CrashModule;
const SAMPLE = Number(process.env.CRASH_SAMPLE ?? 4);

describe("crash injection: SIGKILL at random moments, reopen, check, verify, retry", () => {
  test.each(crash.CRASH_KINDS)("%s: every kill is survived (check clean, acknowledged data intact, retries converge, billing exact)", async (kind) => {
    const r = await crash.runCrashCampaign({ kind, kills: SAMPLE, seed: Number(process.env.CRASH_SEED ?? 1) });
    // eslint-disable-next-line no-console
    console.log(`crash ${kind}: ${r.kills} kills (${r.midOpKills} mid-operation: ${JSON.stringify(r.killedDuring)}), ${r.verified} verifications, known defects ${JSON.stringify(r.known)}, ${r.ms} ms`);
    expect(r.failures).toEqual([]);
    expect(r.kills).toBe(SAMPLE);
  });
});
