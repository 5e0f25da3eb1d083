/** Regions, zones and instance types of the modelled cloud. A zone `ap-guangzhou-3` is in region `ap-guangzhou`. */
import { EngineError, ErrorCodes } from "./errors";
import { show } from "./format";

export const REGIONS: Record<string, number[]> = {
  "ap-guangzhou": [3, 4, 6, 7],
  "ap-shanghai": [2, 3, 4, 5, 8],
  "ap-beijing": [3, 4, 5, 6, 7],
  "ap-chengdu": [1, 2],
  "ap-nanjing": [1, 2, 3],
  "ap-hongkong": [2, 3],
  "ap-singapore": [1, 2, 3, 4],
  "ap-tokyo": [1, 2],
  "na-siliconvalley": [1, 2],
  "na-ashburn": [1, 2],
  "eu-frankfurt": [1, 2],
};

export function listRegions(): { region: string; zones: string[] }[] {
  return Object.entries(REGIONS).map(([region, zs]) => ({ region, zones: zs.map((z) => `${region}-${z}`) }));
}

export function isRegion(region: unknown): region is string {
  return typeof region === "string" && Object.prototype.hasOwnProperty.call(REGIONS, region);
}

export function assertRegion(region: string, property = "region"): void {
  if (!isRegion(region)) {
    throw new EngineError(ErrorCodes.InvalidRegion, `unknown region ${show(region)}; valid regions: ${Object.keys(REGIONS).join(", ")}`, { property });
  }
}

/** Region of a zone; throws InvalidParameterValue.Zone for an unknown zone. */
export function regionOfZone(zone: string, property = "zone"): string {
  const m = typeof zone === "string" ? /^([a-z]+-[a-z]+)-(\d+)$/.exec(zone) : null;
  if (m && isRegion(m[1]) && REGIONS[m[1]].includes(Number(m[2]))) return m[1];
  const hint = m && isRegion(m[1]) ? `zones of ${m[1]}: ${REGIONS[m[1]].map((z) => `${m[1]}-${z}`).join(", ")}` : "list them with: encdisk regions";
  throw new EngineError(ErrorCodes.InvalidZone, `unknown availability zone ${show(zone)}; ${hint}`, { property });
}

/** Instance families; those with local storage (NVMe/HDD local disks) cannot take encrypted disks (L7). */
export const INSTANCE_FAMILIES: Record<string, { localStorage: boolean }> = {
  S5: { localStorage: false },
  S6: { localStorage: false },
  SA2: { localStorage: false },
  SA3: { localStorage: false },
  SA5: { localStorage: false },
  M5: { localStorage: false },
  M6: { localStorage: false },
  C5: { localStorage: false },
  C6: { localStorage: false },
  GN7: { localStorage: false },
  IT3: { localStorage: true },
  IT5: { localStorage: true },
  D3: { localStorage: true },
};

const INSTANCE_SIZES = /^(SMALL[1-4]|MEDIUM[248]|LARGE(8|16|32)|[1-9]?[0-9]?XLARGE[0-9]+)$/;

/** Validates an instance type such as `S5.MEDIUM4`; returns its family. */
export function instanceFamily(instanceType: string): { family: string; localStorage: boolean } {
  const [family, size, extra] = typeof instanceType === "string" ? instanceType.split(".") : [];
  if (extra === undefined && family && size && INSTANCE_FAMILIES[family] && INSTANCE_SIZES.test(size)) {
    return { family, localStorage: INSTANCE_FAMILIES[family].localStorage };
  }
  throw new EngineError(
    ErrorCodes.InvalidInstanceType,
    `unknown instance type ${show(instanceType)}; use FAMILY.SIZE such as S5.MEDIUM4 or IT5.4XLARGE64 (families: ${Object.keys(INSTANCE_FAMILIES).join(", ")})`,
    { property: "instanceType" },
  );
}
