/**
 * Writes schema.json (the Pulumi package schema) from the zod schemas.
 * Usage: npm run gen-schema   (or: node dist/scripts/gen-schema.js [--check])
 * With --check it writes nothing and exits 1 when the committed file is stale.
 */
import * as fs from "fs";
import * as path from "path";
import { renderPackageSchema } from "../provider/schemas/packageSchema";

const root = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? "../.." : "..");
const file = path.join(root, "schema.json");
const version = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;
const text = renderPackageSchema(version);

if (process.argv.includes("--check")) {
  const current = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  if (current !== text) {
    process.stderr.write("schema.json is stale: run npm run gen-schema\n");
    process.exit(1);
  }
  process.stdout.write("schema.json is up to date\n");
} else {
  fs.writeFileSync(file, text);
  process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
}
