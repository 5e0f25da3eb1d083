/**
 * Imports flow one way: resources -> schemas -> engine types; the engine imports neither
 * Pulumi nor zod; the serialized hooks import nothing at run time; no import cycles.
 */
import * as fs from "fs";
import * as path from "path";

const PROVIDER = path.resolve(__dirname, "../../provider");

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((f) => (f.isDirectory() ? files(path.join(dir, f.name)) : f.name.endsWith(".ts") ? [path.join(dir, f.name)] : []));
}

/** Module specifiers a file imports at run time (type-only imports excluded). */
function runtimeImports(file: string): string[] {
  const src = fs.readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of src.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+"([^"]+)"/gm)) if (!m[2]) out.push(m[3]);
  for (const m of src.matchAll(/require\("([^"]+)"\)/g)) out.push(m[1]);
  return out;
}

function resolveLocal(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [`${base}.ts`, path.join(base, "index.ts")]) if (fs.existsSync(c)) return c;
  return undefined;
}

const rel = (f: string) => path.relative(PROVIDER, f);

test("the engine imports neither @pulumi/pulumi nor zod", () => {
  const offenders = files(path.join(PROVIDER, "engine")).filter((f) => runtimeImports(f).some((s) => s.startsWith("@pulumi/") || s === "zod"));
  expect(offenders.map(rel)).toEqual([]);
});

test("schemas import only zod, each other and the engine's types", () => {
  for (const f of files(path.join(PROVIDER, "schemas"))) {
    for (const s of runtimeImports(f)) {
      const ok = s === "zod" || (s.startsWith("./") && !s.includes("/..")) || s === "../engine/types";
      expect(`${rel(f)} -> ${s}: ${ok}`).toBe(`${rel(f)} -> ${s}: true`);
    }
  }
});

test("the serialized hooks load nothing but the runtime, by package name", () => {
  const specs = runtimeImports(path.join(PROVIDER, "resources/providers.ts"));
  expect(new Set(specs)).toEqual(new Set(["pulumi-encdisk/dist/provider/resources/runtime"]));
});

test("no import cycles in the provider (outside the engine)", () => {
  const graph = new Map<string, string[]>();
  for (const f of files(PROVIDER).filter((f) => !f.startsWith(path.join(PROVIDER, "engine")))) {
    graph.set(f, runtimeImports(f).map((s) => resolveLocal(f, s)).filter((x): x is string => !!x && !x.startsWith(path.join(PROVIDER, "engine"))));
  }
  const state = new Map<string, "visiting" | "done">();
  const cycles: string[] = [];
  const visit = (f: string, trail: string[]) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "visiting") {
      cycles.push([...trail.slice(trail.indexOf(f)), f].map(rel).join(" -> "));
      return;
    }
    state.set(f, "visiting");
    for (const d of graph.get(f) ?? []) visit(d, [...trail, f]);
    state.set(f, "done");
  };
  for (const f of graph.keys()) visit(f, []);
  expect(cycles).toEqual([]);
});
