import type { RouteConfig } from "@hono/zod-openapi";
import type { Context } from "hono";
import { askStepUp, type StepUpAsk } from "../auth/core/step-up";
import type { Action } from "../auth/core/ways-in";
import type { AppEnv } from "../env";

/**
 * Step-up declared where the route is: `sensitive(action, createRoute(...))` names the action of the
 * step-up table (auth/core/ways-in.ts) the route takes, and its handler can hand the flow only an ask
 * for that action (`asked`); the flow's writes take the proof auth/core/step-up.ts mints for it. A
 * sensitive flow called from an undeclared route does not compile (and scripts/check-layers.mjs refuses an ask made anywhere else). The declaration is kept off the
 * OpenAPI document (a non-enumerable symbol): the document stays as it was; test/step-up.test.ts
 * checks the declared routes against the table. A mailed link's routes (reset_password,
 * revoke_way_in) declare theirs too; no session asks there: the link is opened by the flow.
 */

const ACTION = Symbol("step-up action");
export type Sensitive<A extends Action> = { readonly [ACTION]: A };

/** Every route that declared an action, as the app serves it. */
export const DECLARED: { action: Action; method: string; path: string }[] = [];

export function sensitive<A extends Action, R extends RouteConfig>(action: A, route: R): R & Sensitive<A> {
  Object.defineProperty(route, ACTION, { value: action, enumerable: false });
  DECLARED.push({ action, method: route.method.toUpperCase(), path: route.path });
  return route as R & Sensitive<A>;
}

/** The signed-in session's ask for the action its route declared. */
export const asked = <A extends Action>(c: Context<AppEnv>, route: Sensitive<A>): StepUpAsk<A> => askStepUp(c.get("auth"), route[ACTION]);
