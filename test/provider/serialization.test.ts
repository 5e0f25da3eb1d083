/**
 * The provider text Pulumi stores in every resource's state (`__provider`). If it changes,
 * every existing resource looks changed to the host: this pins it byte for byte.
 */
import * as pulumi from "@pulumi/pulumi";
import { PROVIDERS } from "../../provider/resources/providers";

async function serialized(provider: object): Promise<string> {
  // Exactly what pulumi.dynamic.Resource does (dynamic/index.js: serializeFunctionMaybeSecret).
  return (await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true })).text;
}

describe.each(Object.entries(PROVIDERS))("%s provider", (name, provider) => {
  test("serializes to the pinned text", async () => {
    expect(await serialized(provider)).toMatchSnapshot();
  });

  test("captures nothing and loads the runtime by package name in every hook", async () => {
    const text = await serialized(provider);
    // The only captured binding is the provider object itself (the arrow `() => provider`).
    const captures = [...text.matchAll(/with\(\{([^}]*)\}\)/g)].map((m) => m[1].split(",").map((s) => s.trim().split(":")[0]).filter((k) => k !== "this" && k !== "arguments"));
    expect(captures.flat()).toEqual(["provider"]);
    for (const hook of ["configure", "check", "diff", "create", "read", "update", "delete"]) {
      expect(Object.keys(provider)).toContain(hook);
    }
    const requires = [...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    expect(requires).toHaveLength(7);
    expect(new Set(requires)).toEqual(new Set(["pulumi-encdisk/dist/provider/resources/runtime"]));
    expect(text).not.toMatch(/require\("\.{1,2}\//);
    if (name !== "KmsAuthorization") expect(text).toContain(`hook("${name}", "create", [inputs])`);
  });
});
