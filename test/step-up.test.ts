import { describe, expect, it } from "vitest";
import { type Action, STEP_UP } from "../src/auth/core/ways-in";
import { DECLARED } from "../src/routes/step-up";
import { call, expectError } from "./helpers";
import { RECIPES } from "./step-up-recipes";

/**
 * Generated from the step-up table (src/auth/core/ways-in.ts STEP_UP): for every action, the request
 * without the proof, with a proof from another session of the same user, and with a spent proof are
 * refused, and the legitimate one passes. What each means per action is its recipe
 * (test/step-up-recipes.ts). And the routes: each declares an action of the table (routes/step-up.ts),
 * every action has one, and every route that asks for the current password declares one.
 */

const actions = Object.keys(STEP_UP) as Action[];

describe.each(actions)("step-up %s", (action) => {
  const recipe = RECIPES[action];

  it("is refused without the proof", async () => {
    const { res, refused } = await recipe.without();
    expectError(res, ...refused);
  });

  it(`is refused with another session's proof: ${recipe.means.otherSession}`, async () => {
    const { res, refused } = await recipe.otherSession();
    expectError(res, ...refused);
  });

  it(`is refused with a spent proof: ${recipe.means.spent}`, async () => {
    const { res, refused } = await recipe.spent();
    expectError(res, ...refused);
  });

  it("passes with the proof", async () => {
    const { res, status } = await recipe.legit();
    expect(res.status, res.text).toBe(status);
  });
});

interface Doc {
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { $ref?: string } }> } }>>;
  components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
}

describe("routes declare their step-up where they are defined", () => {
  const doc = () => call<Doc>("GET", "/openapi.json").then((r) => r.body);
  const key = (method: string, path: string) => `${method.toUpperCase()} ${path}`;
  // Where a sub-app's routes are mounted (src/app.ts): a route declares its path within its sub-app.
  const served = (paths: Doc["paths"], d: (typeof DECLARED)[number]) =>
    ["", "/admin"].map((at) => `${at}${d.path}`).find((p) => paths[p]?.[d.method.toLowerCase()]);

  it("each declared route is served and names an action of the table; every action has a route", async () => {
    const { paths } = await doc();
    expect(DECLARED.length).toBeGreaterThan(0);
    for (const d of DECLARED) {
      expect(actions).toContain(d.action);
      expect(served(paths, d), key(d.method, d.path)).toBeDefined();
    }
    expect([...new Set(DECLARED.map((d) => d.action))].sort()).toEqual([...actions].sort());
    // A session's action is asked by a signed-in session's route; a link's, by the holder of the link.
    for (const d of DECLARED)
      expect(STEP_UP[d.action].by, key(d.method, d.path)).toBe(d.path === "/password/reset" || d.path === "/ways-in/revoke" ? "link" : "session");
  });

  it("every route whose body takes the current password declares a step-up action", async () => {
    const { paths, components } = await doc();
    const declared = new Set(DECLARED.map((d) => key(d.method, served(paths, d) ?? d.path)));
    const asking = Object.entries(paths).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => {
          const ref = op.requestBody?.content["application/json"]?.schema.$ref;
          return ref && "current_password" in (components.schemas[ref.split("/").pop()!]?.properties ?? {});
        })
        .map(([method]) => key(method, path)),
    );
    expect(asking.length).toBeGreaterThanOrEqual(10);
    for (const route of asking) expect(declared, route).toContain(route);
  });

  it("the declaration stays out of the OpenAPI document: a declared route's operation has OpenAPI's own fields only", async () => {
    const { paths } = await doc();
    const fields = ["tags", "summary", "description", "operationId", "parameters", "requestBody", "responses", "security", "deprecated"];
    for (const d of DECLARED) {
      const operation = paths[served(paths, d)!]![d.method.toLowerCase()] as object;
      expect(
        Object.keys(operation).filter((k) => !fields.includes(k)),
        key(d.method, d.path),
      ).toEqual([]);
    }
  });
});
