import type * as oauth from "oauth4webapi";
import type { ProviderConfig } from "../../../config";
import { fromBase64Url } from "../../../encoding";
import { openIdProfile, ProviderFailure, text } from "../claims";
import { openIdKind } from "./openid";

type Microsoft = Extract<ProviderConfig, { kind: "microsoft" }>;

const MICROSOFT = "https://login.microsoftonline.com";
const TENANT_ID = /^[0-9a-f-]{36}$/;

/**
 * Multi-tenant endpoints answer for many issuers (one per tenant): the ID token's own `tid` names
 * it (checkedBy). Documented, fixed endpoints instead of a discovery that cannot match.
 */
async function server(p: Microsoft): Promise<oauth.AuthorizationServer> {
  const base = `${MICROSOFT}/${p.tenant}`;
  return {
    issuer: `${MICROSOFT}/{tenantid}/v2.0`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    token_endpoint: `${base}/oauth2/v2.0/token`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
    id_token_signing_alg_values_supported: ["RS256"],
  };
}

/**
 * Microsoft: the tenant (configured; a multi-tenant answer is checked against the ID token's own
 * tenant, whose signature is checked after). No email_verified: an address counts only with the
 * optional claim xms_edov, documented as a boolean, and only `true`. One person is (tid, oid):
 * `sub` differs per application.
 */
export const microsoft = openIdKind<Microsoft>({
  label: "Microsoft",
  maxAge: "if_given", // auth_time is one of its optional claims: checked when the app registration adds it

  server,
  async checkedBy({ p, response }) {
    const body = (await response.clone().json()) as { id_token?: string };
    const payload = body.id_token?.split(".")[1];
    const bytes = payload ? fromBase64Url(payload) : null;
    const tid = bytes ? text((JSON.parse(new TextDecoder().decode(bytes)) as { tid?: unknown }).tid) : null;
    if (!tid || !TENANT_ID.test(tid)) throw new ProviderFailure("invalid_response", "no tenant id");
    if (TENANT_ID.test(p.tenant) && tid !== p.tenant) throw new ProviderFailure("invalid_response", "another tenant");
    return { ...(await server(p)), issuer: `${MICROSOFT}/${tid}/v2.0` };
  },
  person: (issuer, _subject, claims) => ({
    ...openIdProfile(issuer, `${text(claims.tid)}:${text(claims.oid)}`, claims, claims.xms_edov === true),
    username: null,
  }),
});
