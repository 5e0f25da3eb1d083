/** Provider configuration: stack config over environment over defaults. */
import * as os from "os";
import * as path from "path";
import { resolveConfig, defaultEngineDir } from "../../provider/config";

const none = () => undefined;

test("works with no configuration: engine in ~/.encdisk, engine defaults for the rest", () => {
  expect(resolveConfig(none, {}, "/prog")).toEqual({ engineDir: path.join(os.homedir(), ".encdisk") });
  expect(defaultEngineDir()).toBe(path.join(os.homedir(), ".encdisk"));
});

test("environment variables are read when stack config is silent", () => {
  const env = { ENCDISK_DIR: "/var/encdisk", ENCDISK_KMS_ROOT_KEY_FILE: "/keys/root", ENCDISK_PRICE_PER_CALL_MICROS: "9", ENCDISK_STARTING_BALANCE_MICROS: "1000", ENCDISK_NBD_ADDRESS: "127.0.0.1:10900" };
  expect(resolveConfig(none, env, "/prog")).toEqual({ engineDir: "/var/encdisk", kmsRootKeyFile: "/keys/root", pricePerCallMicros: 9, startingBalanceMicros: 1000, nbdAddress: "127.0.0.1:10900" });
});

test("stack config wins over the environment; relative paths resolve against the program directory", () => {
  const cfg: Record<string, string> = { "encdisk:engineDir": "state", "encdisk:pricePerCallMicros": "3" };
  const r = resolveConfig((k) => cfg[k], { ENCDISK_DIR: "/var/encdisk", ENCDISK_PRICE_PER_CALL_MICROS: "9" }, "/prog");
  expect(r).toEqual({ engineDir: "/prog/state", pricePerCallMicros: 3 });
  expect(resolveConfig((k) => (k === "encdisk:engineDir" ? "~/x" : undefined), {}, "/prog").engineDir).toBe(path.join(os.homedir(), "x"));
});

test("invalid values name the key and its environment variable", () => {
  expect(() => resolveConfig((k) => (k === "encdisk:pricePerCallMicros" ? "cheap" : undefined), {}, "/prog")).toThrow(/encdisk:pricePerCallMicros \(ENCDISK_PRICE_PER_CALL_MICROS\)/);
});
