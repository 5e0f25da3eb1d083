/** Instance hooks. Nothing about an instance changes in place: every change replaces it. */
import type * as pulumi from "@pulumi/pulumi";
import type { Instance as EngineInstance } from "../../engine/types";
import { InstanceInputs, InstanceOutputs } from "../../schemas/instance";
import { instanceFamily, regionOfZone } from "../../engine";
import { engine } from "../context";
import { failureFrom, isNotFound, isUnknown, lookup, passInputs, programInputs, ownedCreate, Props, same, validate } from "./common";

function outs(i: EngineInstance): InstanceOutputs {
  return { instanceId: i.instanceId, name: i.name, zone: i.zone, region: i.region, instanceType: i.instanceType, localStorage: i.localStorage, createdAt: i.createdAt };
}

export const Instance = {
  async check(olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
    const { known: k, failures } = validate(InstanceInputs, news);
    if (k.zone !== undefined) {
      try {
        regionOfZone(k.zone);
      } catch (err) {
        failures.push(failureFrom("zone", err));
      }
    }
    if (k.instanceType !== undefined) {
      try {
        instanceFamily(k.instanceType);
      } catch (err) {
        failures.push(failureFrom("instanceType", err));
      }
    }
    return { inputs: passInputs(news, olds), failures };
  },

  async diff(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    // An omitted localStorage or name keeps the instance's own (localStorage defaults by family).
    for (const key of ["zone", "instanceType", "localStorage", "name"])
      if (news[key] !== undefined && (isUnknown(news[key]) || !same(news[key], olds[key]))) replaces.push(key);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },

  async create(news: Props): Promise<pulumi.dynamic.CreateResult> {
    const k = InstanceInputs.parse(programInputs(news));
    const e = engine();
    const i = ownedCreate(e, news, () => e.createInstance({ zone: k.zone, instanceType: k.instanceType, ...(k.localStorage !== undefined ? { localStorage: k.localStorage } : {}), ...(k.name !== undefined ? { name: k.name } : {}) }), (x) => x.instanceId);
    return { id: i.instanceId, outs: outs(i) };
  },

  async read(id: string): Promise<pulumi.dynamic.ReadResult> {
    const i = lookup(() => engine().findInstance(id));
    if (!i) return {};
    return { id, props: outs(i) };
  },

  async update(id: string): Promise<pulumi.dynamic.UpdateResult> {
    // Only reached when nothing real changed (every real change replaces): refresh the outputs.
    return { outs: outs(engine().getInstance(id)) };
  },

  async delete(id: string): Promise<void> {
    try {
      engine().deleteInstance(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};
