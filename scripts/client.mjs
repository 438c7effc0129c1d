// The client as it ships: a package of its own (client/package.json), with no runtime dependency.
//   node scripts/client.mjs build   writes client/types.ts (the API's types, printed from the zod
//                                   schemas, committed) and builds client/dist/
//   node scripts/client.mjs dist    builds client/dist/ alone: index.js and its declarations, from
//                                   client/index.ts and the committed types.ts. Not committed (gitignored):
//                                   built where it is used, by `npm pack ./client` (prepack), the workerd
//                                   tests' config, `npm run typecheck`, `npm run demo` and the e2e setup
//   node scripts/client.mjs check   fails if client/types.ts is stale, or a fresh build is over its budget
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

// Paths from the repository's root: `npm pack` runs the prepack script in client/.
const root = fileURLToPath(new URL("..", import.meta.url));
const DIST = path.join(root, "client", "dist");
const TYPES = path.join(root, "client", "types.ts");
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
  ["PasswordChanged", "passwordChangedSchema", "output"],
  ["Registered", "registeredUnverifiedSchema", "output"],
  ["TotpSetup", "totpSetupSchema", "output"],
  ["RecoveryCodes", "recoveryCodesSchema", "output"],
  ["Passkey", "passkeySchema", "output"],
  ["Passkeys", "passkeysSchema", "output"],
  ["ResetDone", "resetDoneSchema", "output"],
  ["WayInRevoked", "revokedWayInSchema", "output"],
  ["Providers", "providersSchema", "output"],
  ["TurnstileConfig", "turnstileSchema", "output"],
  ["IdentityLinked", "linkedSchema", "output"],
  ["RegisterRequest", "registerSchema", "input"],
  ["LoginRequest", "loginSchema", "input"],
  ["LoginMfaRequest", "loginMfaSchema", "input"],
  ["PasswordChangeRequest", "passwordChangeSchema", "input"],
  ["AuthorizationRequest", "authorizationRequestSchema", "output"],
  ["AuthorizationRedirect", "redirectToSchema", "output"],
  ["ConnectedApps", "connectedAppsSchema", "output"],
  ["AppDisconnected", "appDisconnectedSchema", "output"],
  ["Organization", "organizationSchema", "output"],
  ["OrganizationBody", "organizationBodySchema", "output"],
  ["Organizations", "organizationsSchema", "output"],
  ["OrganizationSwitched", "switchedSchema", "output"],
  ["Member", "memberSchema", "output"],
  ["MemberBody", "memberBodySchema", "output"],
  ["MembersPage", "membersPageSchema", "output"],
  ["AdminOrganizationsPage", "adminOrganizationsPageSchema", "output"],
  ["OrganizationCreateRequest", "orgCreateSchema", "input"],
  ["OrganizationUpdateRequest", "orgPatchSchema", "input"],
  ["Invitation", "invitationSchema", "output"],
  ["InvitationBody", "invitationCreatedSchema", "output"],
  ["Invitations", "invitationsSchema", "output"],
  ["InvitationCreateRequest", "invitationCreateSchema", "input"],
  ["ApiKey", "apiKeySchema", "output"],
  ["ApiKeyCreated", "createdKeySchema", "output"],
  ["ApiKeys", "keysSchema", "output"],
  ["ApiKeyCreateRequest", "keyCreateSchema", "input"],
  ["TokenResponse", "tokenResponseSchema", "output"],
  ["GuestUpgradeRequest", "guestUpgradeSchema", "input"],
  ["UserBody", "meSchema", "output"],
  ["ProfilePatchRequest", "profilePatchSchema", "input"],
  ["MailSignInStartRequest", "mailSignInStartSchema", "input"],
  ["MailSignInLinkRequest", "mailSignInLinkSchema", "input"],
  ["MailSignInCodeRequest", "mailSignInCodeSchema", "input"],
];

/** The schemas, as the server builds them (bundled, so this script reads the TypeScript as it is). */
async function loadSchemas() {
  const out = await build({
    stdin: {
      contents: [
        "schemas",
        "response-schemas",
        "response-schemas-consent",
        "schemas-clients",
        "response-schemas-oauth",
        "response-schemas-orgs",
        "schemas-orgs",
        "response-schemas-invitations",
        "schemas-invitations",
        "response-schemas-keys",
        "response-schemas-passwords",
        "schemas-keys",
        "schemas-guests",
        "schemas-mail",
      ]
        .map((file) => `export * from "./src/${file}";`)
        .join(" "),
      resolveDir: root,
      loader: "ts",
    },
    absWorkingDir: root,
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
    "// Generated from the server's zod schemas (src/schemas*.ts, src/response-schemas*.ts) by `npm run client:build`. Do not edit.",
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
      absWorkingDir: root,
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
      path.join(root, "node_modules", ".bin", "tsc"),
      [
        path.join(root, "client", "index.ts"),
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
      { cwd: root, encoding: "utf8", shell: process.platform === "win32" },
    );
    if (run.status !== 0) throw new Error(`client: declarations failed\n${run.error ?? ""}${run.stdout}${run.stderr}`);
    return Object.fromEntries(readdirSync(out).map((f) => [f, readFileSync(path.join(out, f), "utf8")]));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** The package's files, fresh: the bundle (checked against the budget) and its declarations. */
async function distFiles() {
  const [code, minified] = await Promise.all([bundle(false), bundle(true)]);
  const gzipped = gzipSync(minified, { level: 9 }).length;
  if (gzipped > BUDGET) throw new Error(`client: ${gzipped} bytes gzipped, over the size budget (${BUDGET})`);
  return { files: { "index.js": banner + code, ...declarations() }, size: `${minified.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET})` };
}

/**
 * Builds client/dist/. Each file is written in a directory of this build's own beside dist/ (same
 * file system; gitignored, outside the package) and renamed into place, so a test run reading the
 * client while another run (or `npm pack`) rebuilds it sees a whole file, never half of one, and a
 * build killed midway leaves nothing in dist/.
 */
export async function buildDist() {
  const { files, size } = await distFiles();
  mkdirSync(DIST, { recursive: true });
  const parts = mkdtempSync(path.join(root, "client", ".dist-"));
  try {
    for (const [name, text] of Object.entries(files)) {
      writeFileSync(path.join(parts, name), text);
      renameSync(path.join(parts, name), path.join(DIST, name));
    }
  } finally {
    rmSync(parts, { recursive: true, force: true });
  }
  for (const name of readdirSync(DIST)) if (!(name in files)) rmSync(path.join(DIST, name), { force: true });
  return size;
}

async function main(mode) {
  const relative = (p) => path.relative(root, p);
  if (mode === "dist") return console.log(`client: ${await buildDist()}; wrote ${relative(DIST)}/`);
  const types = await typesFile();
  if (mode === "build") {
    writeFileSync(TYPES, types);
    return console.log(`client: ${await buildDist()}; wrote ${relative(TYPES)} and ${relative(DIST)}/`);
  }
  if (mode !== "check") throw new Error("usage: node scripts/client.mjs build|dist|check");
  // Only types.ts is committed; the package's files are built fresh wherever they are used, so the
  // check is that they build (bundle and declarations) within the budget.
  if (readFileSync(TYPES, "utf8") !== types) throw new Error(`client: stale: ${relative(TYPES)}. Run \`npm run client:build\` and commit it.`);
  const { size } = await distFiles();
  console.log(`client: ${size}; ${relative(TYPES)} matches the schemas`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await main(process.argv[2]);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
