import { z } from "zod";

// The keys live in a zod-free module: the public declarations reach them (provider/index.ts).
import { CONFIG_KEYS } from "./configKeys";
export { CONFIG_KEYS };
export type { ConfigKey } from "./configKeys";

const micros = z.coerce.number().int().min(0);
/** Validated provider settings (after choosing config, environment or default). */
export const ProviderConfig = z
  .object({
    engineDir: z.string().min(1).meta({ description: CONFIG_KEYS.engineDir.description }),
    kmsRootKeyFile: z.string().min(1).optional().meta({ description: CONFIG_KEYS.kmsRootKeyFile.description }),
    pricePerCallMicros: micros.optional().meta({ description: CONFIG_KEYS.pricePerCallMicros.description }),
    startingBalanceMicros: micros.optional().meta({ description: CONFIG_KEYS.startingBalanceMicros.description }),
    nbdAddress: z.string().regex(/^[^:\s]+:\d+$/, "host:port").optional().meta({ description: CONFIG_KEYS.nbdAddress.description }),
  })
  .strict();
export type ProviderConfig = z.output<typeof ProviderConfig>;
