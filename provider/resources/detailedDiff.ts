/**
 * Replacement diffs that show their cause. The dynamic-provider host of @pulumi/pulumi 3.248
 * forwards only `changes`, `replaces` and `deleteBeforeReplace` of a DiffResult: without a
 * detailed diff the CLI compares the old *outputs* with the new *inputs*, so a replacement lists
 * every output as `-` and the input that causes it is buried. When a diff replaces, this module
 * hands the host a detailed diff too: the `replaces` keys (UPDATE_REPLACE, or ADD_REPLACE when
 * the old state lacks them) and the other stated inputs that change (UPDATE).
 *
 * The host fills its DiffResponse with `setReplacesList(result.replaces)`; the very array
 * returned by the hook keys the detail (a WeakMap), so concurrent diffs cannot mix. Only
 * inside the host (require.main is its script), and only when its protobuf module has the
 * expected shape; otherwise nothing changes.
 */
import { createRequire } from "module";
import { isUnknown, OWNER_KEY, PROVIDER_KEY, Props, same } from "./impl/common";

type Kind = "ADD" | "ADD_REPLACE" | "UPDATE" | "UPDATE_REPLACE";
const details = new WeakMap<object, Array<[string, Kind]>>();
let installed = false;

interface PropertyDiffMsg {
  setKind(k: number): void;
  setInputdiff(b: boolean): void;
}
interface DiffResponseProto {
  setReplacesList(list: string[]): unknown;
  getDetaileddiffMap(): { set(k: string, v: PropertyDiffMsg): void };
  setHasdetaileddiff(b: boolean): void;
}

function install(): boolean {
  if (installed) return true;
  const main = require.main?.filename ?? "";
  if (!/dynamic-provider/.test(main)) return false;
  try {
    const proto = createRequire(main)("../../proto/provider_pb") as {
      DiffResponse: { prototype: DiffResponseProto };
      PropertyDiff: (new () => PropertyDiffMsg) & { Kind: Record<Kind, number> };
    };
    const p = proto.DiffResponse.prototype;
    if (typeof p.setReplacesList !== "function" || typeof p.getDetaileddiffMap !== "function" || typeof p.setHasdetaileddiff !== "function") return false;
    const original = p.setReplacesList;
    p.setReplacesList = function (this: DiffResponseProto, list: string[]) {
      const r = original.call(this, list);
      const d = details.get(list);
      if (d) {
        const map = this.getDetaileddiffMap();
        for (const [key, kind] of d) {
          const pd = new proto.PropertyDiff();
          pd.setKind(proto.PropertyDiff.Kind[kind]);
          pd.setInputdiff(true);
          map.set(key, pd);
        }
        this.setHasdetaileddiff(true);
      }
      return r;
    };
    installed = true;
  } catch {
    return false;
  }
  return installed;
}

/** Attach the detailed diff of a replacing `result` (diff of `olds` outputs against `news` inputs). */
export function withDetailedDiff<T extends { replaces?: string[] }>(result: T, olds: Props, news: Props): T {
  if (!result.replaces || result.replaces.length === 0 || !install()) return result;
  const d: Array<[string, Kind]> = result.replaces.map((k) => [k, olds?.[k] === undefined ? "ADD_REPLACE" : "UPDATE_REPLACE"]);
  for (const [k, v] of Object.entries(news ?? {})) {
    if (k === PROVIDER_KEY || k === OWNER_KEY || result.replaces.includes(k) || v === undefined || v === null) continue;
    if (olds?.[k] !== undefined && (isUnknown(v) || !same(v, olds[k]))) d.push([k, "UPDATE"]);
  }
  details.set(result.replaces, d);
  return result;
}
