import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { STEP_UP, type StepUpRule } from "../../src/auth/core/ways-in";

/** docs/security.md renders the step-up table of src/auth/core/ways-in.ts: the code is the one place the rules live. */

const PROOF: Record<string, (rule: StepUpRule) => string> = {
  password: () => "the password (an account without one: a sign-in within STEP_UP_MAX_AGE)",
  second_factor: (rule) =>
    rule.secondFactor === "if_totp_after_mailbox" ? "a second factor if TOTP was turned on after the address was proved" : "a second factor while TOTP is on",
  new_totp_code: () => "a code from the new authenticator",
  mailbox: () => "the mailed link",
  recent_sign_in: () => "a sign-in within STEP_UP_MAX_AGE",
};

const render = () =>
  [
    "| action | asked by | proof | how fresh |",
    "|---|---|---|---|",
    ...Object.entries(STEP_UP).map(
      ([action, rule]) =>
        `| \`${action}\` | ${rule.by === "session" ? "a signed-in session" : "the holder of a mailed link"} | ${rule.proof.map((p) => PROOF[p]!(rule)).join("; ")} | ${rule.fresh} |`,
    ),
  ].join("\n");

describe("docs/security.md", () => {
  it("shows the step-up table exactly as the code declares it", () => {
    const doc = readFileSync("docs/security.md", "utf8");
    const table = /<!-- step-up:start -->\n([\s\S]*?)\n<!-- step-up:end -->/.exec(doc)?.[1];
    expect(table, "the step-up markers in docs/security.md").toBeDefined();
    expect(table).toBe(render());
  });
});
