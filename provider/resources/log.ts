/**
 * Diagnostics attached to a resource. The dynamic-provider host gives hooks no logger, but it
 * is started with the Pulumi engine's address as its first argument: a warning sent there with
 * the resource's URN (the `__owner` input) appears on that resource's line of `preview` / `up`,
 * like `pulumi.log.warn(msg, resource)` in a program. Outside a host (tests, no URN), the
 * message goes to stderr, which the CLI shows on the stack's line.
 */
import * as path from "path";

interface LogClient {
  log(req: unknown, opts: { deadline: number }, cb: (err: Error | null) => void): void;
}

let client: LogClient | null | undefined;

function engineClient(): LogClient | null {
  if (client !== undefined) return client;
  client = null;
  const addr = process.argv[2];
  // Only inside Pulumi's dynamic-provider host, whose first argument is the engine's address.
  if (!/dynamic-provider/.test(process.argv[1] ?? "") || !addr || !/^[\w.[\]:-]+:\d+$/.test(addr)) return client;
  try {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    const grpc = require(require.resolve("@grpc/grpc-js", { paths: [pulumiDir] })) as { credentials: { createInsecure(): unknown } };
    const engrpc = require("@pulumi/pulumi/proto/engine_grpc_pb") as { EngineClient: new (addr: string, creds: unknown) => LogClient };
    /* eslint-enable @typescript-eslint/no-require-imports */
    client = new engrpc.EngineClient(addr, grpc.credentials.createInsecure());
  } catch {
    client = null;
  }
  return client;
}

/** A warning on the resource `urn` (or on the stack, when there is no URN or no engine). */
export async function warn(message: string, urn: string | undefined): Promise<void> {
  const c = urn ? engineClient() : null;
  if (!c || !urn) {
    process.stderr.write(`${message}\n`);
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const engproto = require("@pulumi/pulumi/proto/engine_pb") as {
    LogRequest: new () => { setSeverity(s: number): void; setMessage(m: string): void; setUrn(u: string): void; setEphemeral(e: boolean): void };
    LogSeverity: { WARNING: number };
  };
  const req = new engproto.LogRequest();
  req.setSeverity(engproto.LogSeverity.WARNING);
  req.setMessage(message);
  req.setUrn(urn);
  req.setEphemeral(false);
  await new Promise<void>((resolve) => {
    c.log(req, { deadline: Date.now() + 5000 }, (err) => {
      if (err) process.stderr.write(`${message}\n`);
      resolve();
    });
  });
}
