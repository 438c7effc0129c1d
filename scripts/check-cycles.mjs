// Fails when modules under src/ import each other in a cycle (type-only imports count too: a
// cycle of types is a cycle of ownership). Relative imports only; packages cannot form one with us.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const files = readdirSync("src", { recursive: true })
  .filter((f) => f.endsWith(".ts"))
  .map((f) => path.join("src", f));
const imports = new Map(
  files.map((file) => {
    const text = readFileSync(file, "utf8");
    const targets = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gms)].map((m) => path.join(path.dirname(file), `${m[1]}.ts`));
    return [file, targets];
  }),
);

const cycles = [];
const done = new Set();
function visit(file, trail) {
  if (trail.includes(file)) return cycles.push([...trail.slice(trail.indexOf(file)), file].join(" -> "));
  if (done.has(file)) return;
  for (const next of imports.get(file) ?? []) visit(next, [...trail, file]);
  done.add(file);
}
for (const file of files) visit(file, []);

if (cycles.length) {
  console.error(`import cycles in src/:\n${[...new Set(cycles)].join("\n")}`);
  process.exit(1);
}
console.log(`imports: no cycles among ${files.length} modules in src/`);
