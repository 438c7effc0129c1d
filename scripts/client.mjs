// The client as it ships: a package of its own (client/package.json), with no runtime dependency.
//   node scripts/client.mjs build   writes client/types.ts (the API's types, printed from the zod
//                                   schemas), client/dist/index.js and the declarations beside it
//   node scripts/client.mjs check   fails if any of them is stale, or the bundle is over its budget
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const DIST = "client/dist";
const TYPES = "client/types.ts";
const BUDGET = 6 * 1024; // minified and gzipped, as an app would ship it
const banner = "// Generated from client/index.ts by `npm run client:build`. Do not edit.\n";

/**
 * The types the client exports, each printed from the schema that validates it on the server (a
 * response's output, a request's input), so the two cannot drift: [name, schema export, side].
 */
const EXPORTS = [
  ["ErrorBody", "errorSchema", "output"],
  ["User", "userSchema", "output"],
  ["Tokens", "tokensSchema", "output"],
  ["SignedInBody", "signedInSchema", "output"],
  ["MfaChallengeBody", "mfaChallengeSchema", "output"],
  ["Me", "meWithFactorsSchema", "output"],
  ["Factors", "factorsSchema", "output"],
  ["Security", "securitySchema", "output"],
  ["Message", "messageSchema", "output"],
  ["Protected", "protectedSchema", "output"],
  ["SessionsPage", "sessionsPageSchema", "output"],
  ["SessionsRevoked", "revokedCountSchema", "output"],
  ["TotpSetup", "totpSetupSchema", "output"],
  ["RecoveryCodes", "recoveryCodesSchema", "output"],
  ["Passkey", "passkeySchema", "output"],
  ["Passkeys", "passkeysSchema", "output"],
  ["ResetDone", "resetDoneSchema", "output"],
  ["WayInRevoked", "revokedWayInSchema", "output"],
  ["Providers", "providersSchema", "output"],
  ["IdentityLinked", "linkedSchema", "output"],
  ["RegisterRequest", "registerSchema", "input"],
  ["LoginRequest", "loginSchema", "input"],
  ["LoginMfaRequest", "loginMfaSchema", "input"],
  ["PasswordChangeRequest", "passwordChangeSchema", "input"],
];

/** The schemas, as the server builds them (bundled, so this script reads the TypeScript as it is). */
async function loadSchemas() {
  const out = await build({
    stdin: { contents: 'export * from "./src/schemas"; export * from "./src/response-schemas";', resolveDir: process.cwd(), loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    write: false,
  });
  const dir = mkdtempSync(path.join(tmpdir(), "client-schemas-"));
  try {
    writeFileSync(path.join(dir, "schemas.mjs"), out.outputFiles[0].text);
    return await import(path.join(dir, "schemas.mjs"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A zod (v4) schema as a TypeScript type: what the server's z.input / z.output of it is. */
function print(schema, side, indent = "") {
  const def = schema._zod.def;
  const inner = (s) => print(s, side, indent);
  switch (def.type) {
    case "string":
      return "string";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "unknown":
      return "unknown";
    case "null":
      return "null";
    case "literal":
      return def.values.map((v) => JSON.stringify(v)).join(" | ");
    case "enum":
      return Object.values(def.entries)
        .map((v) => JSON.stringify(v))
        .join(" | ");
    case "array": {
      const element = inner(def.element);
      return element.includes("|") ? `(${element})[]` : `${element}[]`; // a union (or a field of one) needs its parentheses
    }
    case "nullable":
      return `${inner(def.innerType)} | null`;
    case "optional":
      return `${inner(def.innerType)} | undefined`;
    case "default":
      return side === "input" ? `${inner(def.innerType)} | undefined` : inner(def.innerType);
    case "union":
      return def.options.map(inner).join(" | ");
    case "record":
      return `Record<${inner(def.keyType)}, ${inner(def.valueType)}>`;
    case "pipe":
      return inner(side === "input" ? def.in : def.out);
    case "object": {
      const next = `${indent}  `;
      const fields = Object.entries(def.shape).map(([key, value]) => {
        const optional = ["optional", "default"].includes(value._zod.def.type) && (side === "input" || value._zod.def.type === "optional");
        return `${next}${key}${optional ? "?" : ""}: ${print(value, side, next)};`;
      });
      if (def.catchall && def.catchall._zod.def.type !== "never") fields.push(`${next}[key: string]: unknown;`);
      return fields.length ? `{\n${fields.join("\n")}\n${indent}}` : "Record<string, never>";
    }
    default:
      throw new Error(`client types: no printer for zod type ${def.type}`);
  }
}

async function typesFile() {
  const schemas = await loadSchemas();
  const lines = [
    "// Generated from src/schemas.ts and src/response-schemas.ts by `npm run client:build`. Do not edit.",
    "// Each type is what the server's zod schema validates (a request's input, a response's output).",
    "",
    `export type ErrorCode = ${print(schemas.errorSchema.shape.error, "output")};`,
  ];
  for (const [name, schema, side] of EXPORTS) {
    if (!schemas[schema]) throw new Error(`client types: no schema ${schema}`);
    lines.push("", `export type ${name} = ${print(schemas[schema], side)};`);
  }
  return `${lines.join("\n")}\n`;
}

const bundle = async (minify) =>
  (
    await build({
      entryPoints: ["client/index.ts"],
      bundle: true,
      minify,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      write: false,
      legalComments: "none",
    })
  ).outputFiles[0].text;

/** The declarations tsc emits for the client, by file name (they import nothing outside client/). */
function declarations() {
  const out = mkdtempSync(path.join(tmpdir(), "client-dts-"));
  try {
    const run = spawnSync(
      path.join("node_modules", ".bin", "tsc"),
      [
        "client/index.ts",
        "--ignoreConfig",
        "--declaration",
        "--emitDeclarationOnly",
        "--outDir",
        out,
        "--target",
        "es2022",
        "--module",
        "esnext",
        "--moduleResolution",
        "bundler",
        "--strict",
        "--skipLibCheck",
        "--types",
        "",
        "--lib",
        "es2022",
      ],
      { encoding: "utf8", shell: process.platform === "win32" },
    );
    if (run.status !== 0) throw new Error(`client: declarations failed\n${run.error ?? ""}${run.stdout}${run.stderr}`);
    return Object.fromEntries(readdirSync(out).map((f) => [f, readFileSync(path.join(out, f), "utf8")]));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const mode = process.argv[2];
const types = await typesFile();
if (mode === "build") writeFileSync(TYPES, types);
const [code, minified] = await Promise.all([bundle(false), bundle(true)]);
const gzipped = gzipSync(minified, { level: 9 }).length;
console.log(`client: ${minified.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET})`);
if (gzipped > BUDGET) {
  console.error("client: over the size budget");
  process.exit(1);
}
const files = { "index.js": banner + code, ...declarations() };
if (mode === "build") {
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(DIST, name), text);
  console.log(`client: wrote ${TYPES} and ${DIST}/ (${Object.keys(files).join(", ")})`);
} else {
  const stale = [];
  if (readFileSync(TYPES, "utf8") !== types) stale.push(TYPES);
  const shipped = new Set(readdirSync(DIST));
  for (const [name, text] of Object.entries(files)) {
    if (!shipped.has(name) || readFileSync(path.join(DIST, name), "utf8") !== text) stale.push(`${DIST}/${name}`);
  }
  for (const name of shipped) if (!(name in files)) stale.push(`${DIST}/${name} (no longer built)`);
  if (stale.length) {
    console.error(`client: stale: ${stale.join(", ")}. Run \`npm run client:build\` and commit them.`);
    process.exit(1);
  }
  console.log(`client: ${TYPES} and ${DIST}/ match the schemas and client/index.ts`);
}
