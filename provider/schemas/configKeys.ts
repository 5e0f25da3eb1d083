/**
 * Provider configuration. Each key is read from stack config (`encdisk:<key>`), else from its
 * environment variable, else the default. Stack config values arrive as strings.
 */
export const CONFIG_KEYS = {
  engineDir: {
    env: "ENCDISK_DIR",
    description:
      "Engine directory (state database and encrypted block files). Default `~/.encdisk`. A relative path is resolved against the stack program's directory.",
  },
  kmsRootKeyFile: {
    env: "ENCDISK_KMS_ROOT_KEY_FILE",
    description:
      "File holding the 32-byte KMS root secret that protects CMK material at rest. Default: the engine's (`ENCDISK_KMS_ROOT_KEY` as hex if set, else `~/.config/encdisk/kms-root.key`, created 0600 on first use).",
  },
  pricePerCallMicros: {
    env: "ENCDISK_PRICE_PER_CALL_MICROS",
    description: "Price of one billed KMS API call in micro-units (B2). Applied when the engine's account is first created.",
  },
  startingBalanceMicros: {
    env: "ENCDISK_STARTING_BALANCE_MICROS",
    description: "Starting account balance in micro-units (B3). Applied when the engine's account is first created.",
  },
  nbdAddress: {
    env: "ENCDISK_NBD_ADDRESS",
    description: "host:port that `encdisk serve` listens on, used in attachment endpoints. Default 127.0.0.1:10809.",
  },
} as const;

export type ConfigKey = keyof typeof CONFIG_KEYS;
