import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * docs/crypto.md, the cryptographic inventory (ASVS 11.1.2), held to the code: a new algorithm, a new
 * secret or a renamed file fails here until the inventory says so.
 */

const doc = readFileSync("docs/crypto.md", "utf8");
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : [],
  );
const src = sources("src").map((file) => ({ file, text: readFileSync(file, "utf8") }));

/** The algorithm names src/ gives WebCrypto or jose: `name:`, `hash:`, importKey's format name, `ALG`, curves, digests. */
function algorithmsInCode(): Map<string, string> {
  const found = new Map<string, string>();
  const patterns = [
    /\bname:\s*"([A-Z][A-Z0-9-]+)"/g,
    /\bhash:\s*"([A-Z][A-Z0-9-]+)"/g,
    /\bnamedCurve:\s*"([A-Z][A-Z0-9-]+)"/g,
    /crypto\.subtle\.(?:digest|sign|verify|encrypt|decrypt)\(\s*"([A-Z][A-Z0-9-]+)"/g,
    /crypto\.subtle\.importKey\(\s*"raw",\s*[^,]+,\s*"([A-Z][A-Z0-9-]+)"/g,
    /\bconst ALG = "([A-Z0-9]+)"/g,
    /"(SHA-\d+)"/g, // a hash chosen in an expression (TOTP's by the secret's length)
  ];
  for (const { file, text } of src) for (const p of patterns) for (const m of text.matchAll(p)) found.set(m[1]!, file);
  return found;
}

/** Each secret: wrangler.toml's [secrets] required, and the fields config.ts keeps out of the deploy check's vars. */
function secrets(): string[] {
  const toml = readFileSync("wrangler.toml", "utf8");
  const required = /\[secrets\]\s*required\s*=\s*\[([^\]]*)\]/.exec(toml)?.[1] ?? "";
  const fromToml = [...required.matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]!);
  const omitted = /ConfigFields\.omit\(\{([^}]*)\}/.exec(readFileSync("src/config.ts", "utf8"))?.[1] ?? "";
  const fromConfig = [...omitted.matchAll(/\b([A-Z][A-Z_]+): true/g)].map((m) => m[1]!);
  const access = /ACCESS_SECRETS = \{([^}]*)\}/.exec(readFileSync("src/config-access.ts", "utf8"))?.[1] ?? "";
  const fromAccess = [...access.matchAll(/\b([A-Z][A-Z_]+): true/g)].map((m) => m[1]!);
  return [...new Set([...fromToml, ...fromConfig, ...fromAccess])];
}

describe("docs/crypto.md", () => {
  it("names every algorithm src/ hands to WebCrypto or jose", () => {
    const found = algorithmsInCode();
    // What the code uses today, so this test cannot pass by finding nothing.
    for (const known of ["PBKDF2", "HMAC", "SHA-256", "SHA-1", "HKDF", "AES-GCM", "ES256"]) expect([...found.keys()]).toContain(known);
    // WebCrypto's "AES-GCM" is written with its key size here.
    const named = (name: string) => doc.includes(name === "AES-GCM" ? "AES-256-GCM" : name);
    const missing = [...found].filter(([name]) => !named(name));
    expect(missing.map(([name, file]) => `${name} (${file})`)).toEqual([]);
  });

  it("lists every secret of wrangler.toml and the config in its key table", () => {
    const all = secrets();
    for (const known of [
      "JWT_WRAPPING_KEY",
      "JWT_PRIVATE_KEY",
      "PASSWORD_PEPPER",
      "PASSWORD_PEPPER_PREVIOUS",
      "MFA_ENCRYPTION_KEY",
      "MFA_ENCRYPTION_KEY_PREVIOUS",
      "OAUTH_CLIENT_SECRETS",
      "TURNSTILE_SECRET",
    ])
      expect(all).toContain(known);
    const rows = doc.split("\n").filter((l) => l.startsWith("| `"));
    expect(all.filter((name) => !rows.some((r) => r.startsWith(`| \`${name}\` |`)))).toEqual([]);
  });

  it("names only files that exist", () => {
    const files = [...new Set([...doc.matchAll(/`(src\/[^`\s]+\.ts)`/g)].map((m) => m[1]!))];
    expect(files.length).toBeGreaterThan(20);
    expect(files.filter((f) => !existsSync(f))).toEqual([]);
  });
});

describe("src/", () => {
  it("never uses Math.random: every random value comes from crypto.getRandomValues (or randomUUID, for ids)", () => {
    expect(src.filter(({ text }) => /\bMath\.random\s*\(/.test(text)).map(({ file }) => file)).toEqual([]);
  });
});
