/**
 * Writes provider/types.generated.ts (the package's public Args/Outputs interfaces) from the
 * zod schemas. Usage: npm run gen-types   (or: node dist/scripts/gen-types.js [--check])
 * With --check it writes nothing and exits 1 when the committed file is stale.
 */
import * as fs from "fs";
import * as path from "path";
import { renderPackageTypes } from "../provider/schemas/packageTypes";

const root = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? "../.." : "..");
const file = path.join(root, "provider", "types.generated.ts");
const text = renderPackageTypes();

if (process.argv.includes("--check")) {
  const current = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  if (current !== text) {
    process.stderr.write("provider/types.generated.ts is stale: run npm run gen-types\n");
    process.exit(1);
  }
  process.stdout.write("provider/types.generated.ts is up to date\n");
} else {
  fs.writeFileSync(file, text);
  process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
}
