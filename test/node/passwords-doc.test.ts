import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BUILT_IN_CONTEXT_WORDS, deploymentWords, GENERIC_LABELS } from "../../src/auth/core/password-context";

/** docs/passwords.md documents the context words (ASVS 6.1.2) exactly as src/auth/core/password-context.ts uses them. */

const doc = readFileSync(new URL("../../docs/passwords.md", import.meta.url), "utf8");
const section = doc.slice(doc.indexOf("## Context words"), doc.indexOf("## Breached passwords"));

describe("docs/passwords.md's context words", () => {
  it("lists every built-in word and every generic host label the code uses", () => {
    for (const word of BUILT_IN_CONTEXT_WORDS) expect(section).toContain(`\`${word}\``);
    for (const label of GENERIC_LABELS) expect(section).toContain(`\`${label}\``);
    expect(section).toContain("`APP_NAME`");
    expect(section).toContain("`PASSWORD_CONTEXT_WORDS`");
  });

  it("derives what its example says from a deployment's settings", () => {
    const words = deploymentWords({ APP_NAME: "Edge Auth", ISSUER: "https://auth.acme-corp.com/", APP_URL: "", PASSWORD_CONTEXT_WORDS: ["bluefalcon"] });
    expect(words.sort()).toEqual(["acmecorp", "admin", "bluefalcon", "edgeauth"]);
    expect(section).toContain("`https://auth.acme-corp.com/` gives `acme-corp`");
  });
});
