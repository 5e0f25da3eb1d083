/**
 * Reading the KMS bill from a stack program: an Output that resolves once the resources it
 * waits for are done, read from the same engine directory the provider uses.
 */
import * as pulumi from "@pulumi/pulumi";
import { resolveConfig } from "./config";
import type { Engine, KmsUsage } from "./engine/types";

export interface KmsUsageArgs {
  /** Only this region (default: all regions summed). */
  region?: string;
  /** Resources whose operations must be counted: the read happens after they are created or updated. */
  after?: pulumi.Resource[];
}

export interface KmsUsageResult {
  /** Billable KMS API calls made (B2). */
  calls: number;
  /** Sum charged for them, in micro-units. */
  chargedMicros: number;
  /** Per-region detail. */
  regions: KmsUsage[];
  /** Account balance after the charges, in micro-units (B3). */
  balanceMicros: number;
}

/**
 * KMS calls billed so far in the engine the provider uses (stack config `encdisk:*`,
 * environment, defaults: the same resolution as the provider). During a preview that creates
 * the resources in `after`, the value is unknown, as it is not yet known what they cost.
 */
export function getKmsUsage(args: KmsUsageArgs = {}): pulumi.Output<KmsUsageResult> {
  const ids = (args.after ?? []).map((r) => (r as pulumi.CustomResource).id ?? r.urn);
  return pulumi.all(ids).apply(() => {
    const cfg = new pulumi.Config("encdisk");
    const settings = resolveConfig((key) => cfg.get(key.slice("encdisk:".length)));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { openEngine } = require("./engine") as typeof import("./engine");
    let e: Engine | undefined;
    try {
      e = openEngine({
        dir: settings.engineDir,
        ...(settings.kmsRootKeyFile !== undefined ? { kmsRootKeyFile: settings.kmsRootKeyFile } : {}),
        ...(settings.pricePerCallMicros !== undefined ? { pricePerCallMicros: settings.pricePerCallMicros } : {}),
        ...(settings.startingBalanceMicros !== undefined ? { startingBalanceMicros: settings.startingBalanceMicros } : {}),
      });
      const regions = e.kmsUsage(args.region);
      return {
        calls: regions.reduce((n, r) => n + r.calls, 0),
        chargedMicros: regions.reduce((n, r) => n + r.chargedMicros, 0),
        regions,
        balanceMicros: e.getAccount().balanceMicros,
      };
    } finally {
      e?.close();
    }
  });
}
