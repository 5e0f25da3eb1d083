/**
 * Plain provider settings and the engines opened from them. This is the only place the
 * provider holds live handles; the serialized hooks hold none (they reach this module by
 * package name at call time).
 */
import * as fs from "fs";
import { resolveConfig } from "../config";
import type { ProviderConfig } from "../schemas/config";
import type { Engine } from "../engine/types";

let settings: ProviderConfig | undefined;
const engines = new Map<string, Engine>();

/** Minimal view of the dynamic provider's `Config` (`get` by full key, e.g. `encdisk:engineDir`). */
export interface ConfigLike {
  get(key: string): string | undefined;
}

/** Store the settings resolved from stack config, environment and defaults. */
export function configure(config: ConfigLike | undefined): ProviderConfig {
  settings = resolveConfig((key) => config?.get(key));
  return settings;
}

/** Settings in force: those configured, else environment and defaults. */
export function currentSettings(): ProviderConfig {
  settings ??= resolveConfig(() => undefined);
  return settings;
}

/** The engine the settings name, opened once per directory and key file. */
export function engine(): Engine {
  const s = currentSettings();
  const key = JSON.stringify([s.engineDir, s.kmsRootKeyFile ?? null]);
  let e = engines.get(key);
  if (!e) {
    // Required here rather than imported: the schema generator and the mocks tests load the
    // resource modules without needing the native SQLite binding.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { openEngine } = require("../engine") as typeof import("../engine");
    fs.mkdirSync(s.engineDir, { recursive: true });
    e = openEngine({
      dir: s.engineDir,
      ...(s.kmsRootKeyFile !== undefined ? { kmsRootKeyFile: s.kmsRootKeyFile } : {}),
      ...(s.pricePerCallMicros !== undefined ? { pricePerCallMicros: s.pricePerCallMicros } : {}),
      ...(s.startingBalanceMicros !== undefined ? { startingBalanceMicros: s.startingBalanceMicros } : {}),
      ...(s.nbdAddress !== undefined ? { nbdAddress: s.nbdAddress } : {}),
    });
    engines.set(key, e);
  }
  return e;
}

/**
 * The engine when its directory already holds state, else undefined. `check` runs during
 * preview and only looks things up: it must not create an engine directory or a root key.
 */
export function existingEngine(): Engine | undefined {
  const s = currentSettings();
  try {
    if (!fs.existsSync(s.engineDir) || fs.readdirSync(s.engineDir).length === 0) return undefined;
  } catch {
    return undefined;
  }
  return engine();
}

/** Close every open engine and forget the settings (tests, and a host shutting down). */
export function reset(): void {
  for (const e of engines.values()) {
    try {
      e.close();
    } catch {
      /* already closed */
    }
  }
  engines.clear();
  settings = undefined;
}
