/**
 * Provider configuration: where the engine lives and how it bills. Hooks read these plain
 * values (never a live handle) and open the engine from them.
 */
import * as os from "os";
import * as path from "path";
import { CONFIG_KEYS, ConfigKey } from "./schemas/configKeys";
import { ProviderConfig as ProviderConfigSchema } from "./schemas/config";
import type { ProviderConfig } from "./types.generated";

export { CONFIG_KEYS };
export type { ProviderConfig };

/** Default engine directory when neither `encdisk:engineDir` nor ENCDISK_DIR is set. */
export function defaultEngineDir(): string {
  return path.join(os.homedir(), ".encdisk");
}

/**
 * Resolve the provider settings. `get` looks a key up in stack config (`encdisk:<key>`);
 * environment variables come next, then defaults. Relative paths resolve against `cwd` (the
 * stack program's directory for both the program and the dynamic-provider host).
 */
export function resolveConfig(
  get: (key: string) => string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): ProviderConfig {
  const raw: Record<string, string | undefined> = {};
  for (const key of Object.keys(CONFIG_KEYS) as ConfigKey[]) {
    const fromConfig = get(`encdisk:${key}`);
    const fromEnv = env[CONFIG_KEYS[key].env];
    const value = fromConfig !== undefined && fromConfig !== "" ? fromConfig : fromEnv !== undefined && fromEnv !== "" ? fromEnv : undefined;
    if (value !== undefined) raw[key] = value;
  }
  raw.engineDir ??= defaultEngineDir();
  const parsed = ProviderConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `encdisk:${i.path.join(".")} (${CONFIG_KEYS[i.path[0] as ConfigKey]?.env ?? "?"}): ${i.message}`);
    throw new Error(`invalid encdisk provider configuration: ${issues.join("; ")}`);
  }
  const cfg = parsed.data;
  cfg.engineDir = expandPath(cfg.engineDir, cwd);
  if (cfg.kmsRootKeyFile !== undefined) cfg.kmsRootKeyFile = expandPath(cfg.kmsRootKeyFile, cwd);
  return cfg;
}

function expandPath(p: string, cwd: string): string {
  if (p === "~") return os.homedir();
  if (p.startsWith("~/")) return path.join(os.homedir(), p.slice(2));
  return path.resolve(cwd, p);
}
