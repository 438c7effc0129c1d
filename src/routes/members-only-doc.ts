import { membersOnlyGroup } from "../middleware/members-only";

/**
 * The OpenAPI document's side of src/middleware/members-only.ts: every Bearer operation in a members'
 * route group also answers 403 guest_not_allowed. Added here from the same table, so neither the
 * routes nor the document can forget a group.
 */

type Operation = { security?: Record<string, unknown>[]; responses?: Record<string, { description: string; content?: unknown }> };
type Doc = { paths?: Record<string, Record<string, Operation>> };

const errorContent = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };

export function withGuestRefusals<D>(doc: D): D {
  for (const [path, operations] of Object.entries((doc as Doc).paths ?? {})) {
    if (!membersOnlyGroup(path)) continue;
    for (const op of Object.values(operations)) {
      if (!op.security?.some((s) => "bearerAuth" in s) || !op.responses) continue;
      const forbidden = op.responses["403"];
      if (forbidden) forbidden.description = `${forbidden.description}, guest_not_allowed`;
      else op.responses["403"] = { description: "guest_not_allowed", content: errorContent };
    }
  }
  return doc;
}
