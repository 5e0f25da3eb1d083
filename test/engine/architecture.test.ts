import * as fs from "fs";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(full) : e.name.endsWith(".ts") ? [full] : [];
  });
}

function imports(file: string): string[] {
  const src = fs.readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of src.matchAll(/(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|require\(\s*["']([^"']+)["']\s*\)|import\(\s*["']([^"']+)["']\s*\)/g)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

describe("architecture", () => {
  test("the engine imports neither @pulumi/pulumi nor zod (nor anything of the provider above it)", () => {
    const engineDir = path.join(ROOT, "provider/engine");
    const bad: string[] = [];
    for (const f of tsFiles(engineDir)) {
      for (const spec of imports(f)) {
        if (/^(@pulumi\/|zod)/.test(spec)) bad.push(`${path.relative(ROOT, f)} imports ${spec}`);
        if (spec.startsWith(".") && !path.resolve(path.dirname(f), spec).startsWith(engineDir)) bad.push(`${path.relative(ROOT, f)} reaches outside the engine: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test("better-sqlite3 is imported only by the state store (provider/engine/store/db.ts)", () => {
    const users = tsFiles(path.join(ROOT, "provider")).filter((f) => imports(f).includes("better-sqlite3"));
    expect(users.map((f) => path.relative(ROOT, f))).toEqual(["provider/engine/store/db.ts"]);
  });

  test("the provider reaches the engine only through its facade (index) and its API contract (types)", () => {
    const engineDir = path.join(ROOT, "provider/engine");
    const allowed = new Set([engineDir, path.join(engineDir, "index"), path.join(engineDir, "types")]);
    const bad: string[] = [];
    for (const f of tsFiles(path.join(ROOT, "provider")).filter((f) => !f.startsWith(engineDir + path.sep))) {
      for (const spec of imports(f).filter((s) => s.startsWith("."))) {
        const target = path.resolve(path.dirname(f), spec);
        if (target.startsWith(engineDir) && !allowed.has(target)) bad.push(`${path.relative(ROOT, f)} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test("relative imports under provider/ form no cycles", () => {
    const files = tsFiles(path.join(ROOT, "provider"));
    const graph = new Map<string, string[]>();
    for (const f of files) {
      graph.set(
        f,
        imports(f)
          .filter((s) => s.startsWith("."))
          .map((s) => {
            const base = path.resolve(path.dirname(f), s);
            return [base + ".ts", path.join(base, "index.ts")].find((c) => fs.existsSync(c)) ?? base;
          }),
      );
    }
    const cycles: string[] = [];
    const state = new Map<string, 1 | 2>();
    const visit = (f: string, stack: string[]) => {
      if (state.get(f) === 2) return;
      if (state.get(f) === 1) {
        cycles.push([...stack.slice(stack.indexOf(f)), f].map((x) => path.relative(ROOT, x)).join(" -> "));
        return;
      }
      state.set(f, 1);
      for (const g of graph.get(f) ?? []) visit(g, [...stack, f]);
      state.set(f, 2);
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });
});
