/**
 * KmsAuthorization hooks: the declarative form of O2. The grant is account-wide and cannot be
 * revoked through the engine, so delete only forgets it.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { Account } from "../../engine/types";
import { KmsAuthorizationInputs, KmsAuthorizationOutputs } from "../../schemas/kmsAuthorization";
import { engine } from "../context";
import { passInputs, Props, validate } from "./common";

function outs(a: Account): KmsAuthorizationOutputs {
  return { accountId: a.accountId, kmsAuthorized: a.kmsAuthorized, balanceMicros: a.balanceMicros, pricePerCallMicros: a.pricePerCallMicros };
}

export const KmsAuthorization = {
  async check(_olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
    const { failures } = validate(KmsAuthorizationInputs, news);
    return { inputs: passInputs(news), failures };
  },

  async diff(): Promise<pulumi.dynamic.DiffResult> {
    return { changes: false, replaces: [], deleteBeforeReplace: false };
  },

  async create(): Promise<pulumi.dynamic.CreateResult> {
    const a = engine().authorizeKms();
    return { id: a.accountId, outs: outs(a) };
  },

  async read(id: string): Promise<pulumi.dynamic.ReadResult> {
    const a = engine().getAccount();
    if (!a.kmsAuthorized || a.accountId !== id) return {};
    return { id, props: outs(a) };
  },

  async update(): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: outs(engine().authorizeKms()) };
  },

  async delete(): Promise<void> {
    // O2's grant is account-level and stays: encrypted disks of this or other stacks rely on it.
  },
};
