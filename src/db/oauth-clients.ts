import { and, desc, eq, gt, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "./client";
import { type OAuthClient, oauthClients, oauthConsents, oauthRequests } from "./oauth-server-tables";
import { sessions, users } from "./schema";
import { live } from "./sessions";

export type NewOAuthClient = typeof oauthClients.$inferInsert;
export type OAuthClientChange = Partial<Pick<NewOAuthClient, "name" | "uri" | "redirectUris" | "scope" | "resources">>;

/** A client by its client_id, disabled or not (the caller judges). */
export function findClient(db: Db, id: string) {
  return db.select().from(oauthClients).where(eq(oauthClients.id, id)).get();
}

export function insertClient(db: Db, row: NewOAuthClient) {
  return db.insert(oauthClients).values(row);
}

export interface ClientCursor {
  createdAt: number;
  id: string;
}

/** Every client, newest first, keyset-paginated (the admin's list). */
export function listClients(db: Db, limit: number, after?: ClientCursor) {
  const page = after
    ? or(lt(oauthClients.createdAt, new Date(after.createdAt)), and(eq(oauthClients.createdAt, new Date(after.createdAt)), lt(oauthClients.id, after.id)))
    : undefined;
  return db.select().from(oauthClients).where(page).orderBy(desc(oauthClients.createdAt), desc(oauthClients.id)).limit(limit).all();
}

/**
 * An admin's change to a client. `disabled` true keeps the first time it was disabled (a retry after
 * a failed KV write changes nothing here); false enables it again.
 */
export function updateClient(db: Db, id: string, change: OAuthClientChange & { disabled?: boolean }, now: Date) {
  const { disabled, ...fields } = change;
  const disabledAt = disabled === undefined ? undefined : disabled ? sql`coalesce(${oauthClients.disabledAt}, ${now.getTime()})` : null;
  return db
    .update(oauthClients)
    .set({ ...fields, ...(disabledAt === undefined ? {} : { disabledAt }) })
    .where(eq(oauthClients.id, id))
    .returning();
}

/** Removes a client; its requests in flight and the consents given to it go by cascade. */
export function deleteClient(db: Db, id: string) {
  return db.delete(oauthClients).where(eq(oauthClients.id, id)).returning({ id: oauthClients.id });
}

/** A user's live grants, one row per client: scopes and resources as JSON arrays, since, last used, how many. */
export function grantsByClient(db: Db, userId: string, now: Date, limit: number) {
  return db
    .select({
      clientId: oauthClients.id,
      name: oauthClients.name,
      uri: oauthClients.uri,
      scopes: sql<string>`json_group_array(DISTINCT ${sessions.scope})`,
      resources: sql<string>`json_group_array(DISTINCT ${sessions.resource})`,
      since: sql<number>`min(${sessions.createdAt})`,
      lastUsed: sql<number>`max(${sessions.lastUsedAt})`,
      grants: sql<number>`count(*)`,
    })
    .from(sessions)
    .innerJoin(oauthClients, eq(oauthClients.id, sessions.clientId))
    .where(and(eq(sessions.userId, userId), isNotNull(sessions.clientId), live(now)))
    .groupBy(oauthClients.id)
    .orderBy(sql`min(${sessions.createdAt})`)
    .limit(limit)
    .all();
}

/** What a user agreed each app may have (one row per client and resource). */
export function consentsOf(db: Db, userId: string, limit: number) {
  return (
    db
      .select({
        clientId: oauthClients.id,
        name: oauthClients.name,
        uri: oauthClients.uri,
        resource: oauthConsents.resource,
        scope: oauthConsents.scope,
        createdAt: oauthConsents.createdAt,
      })
      .from(oauthConsents)
      .innerJoin(oauthClients, eq(oauthClients.id, oauthConsents.clientId))
      .innerJoin(users, eq(users.id, oauthConsents.userId))
      // Only consents that still count: one from before the user's sessions last ended lapsed with them.
      .where(and(eq(oauthConsents.userId, userId), eq(oauthConsents.sessionEpoch, users.sessionEpoch)))
      .orderBy(oauthConsents.createdAt)
      .limit(limit)
      .all()
  );
}

/** Forgets what the user agreed this app may have: its next request asks again. */
export function deleteConsents(db: Db, userId: string, clientId: string) {
  return db
    .delete(oauthConsents)
    .where(and(eq(oauthConsents.userId, userId), eq(oauthConsents.clientId, clientId)))
    .returning({ resource: oauthConsents.resource });
}

/** The user's requests to this app in flight: an approved code not yet exchanged dies with them. */
export function deleteUserRequests(db: Db, userId: string, clientId: string) {
  return db
    .delete(oauthRequests)
    .where(and(eq(oauthRequests.userId, userId), eq(oauthRequests.clientId, clientId)))
    .returning({ id: oauthRequests.id });
}

/** At most this many self-registered clients may wait for their first token at once (auth/oauth-server/registration.ts). */
export const PENDING_REGISTRATIONS_MAX = 10_000;

/** Stores a self-registered client, unless PENDING_REGISTRATIONS_MAX are waiting already: no row back then. */
export function insertDynamicClient(db: Db, row: OAuthClient) {
  const v = (value: string | number | null, name: string) => sql`${value}`.as(name);
  const pending = db
    .select({ n: sql<number>`count(*)` })
    .from(oauthClients)
    .where(and(eq(oauthClients.source, "dynamic"), isNull(oauthClients.firstTokenAt), gt(oauthClients.expiresAt, row.createdAt)));
  return db
    .insert(oauthClients)
    .select(
      db
        .select({
          id: v(row.id, "id"),
          name: v(row.name, "name"),
          uri: v(row.uri, "uri"),
          redirectUris: v(JSON.stringify(row.redirectUris), "redirect_uris"),
          secretHash: v(row.secretHash, "secret_hash"),
          grantTypes: v(JSON.stringify(row.grantTypes), "grant_types"),
          scope: v(row.scope, "scope"),
          resources: v(JSON.stringify(row.resources), "resources"),
          source: v(row.source, "source"),
          createdAt: v(row.createdAt.getTime(), "created_at"),
          disabledAt: v(null, "disabled_at"),
          expiresAt: v(row.expiresAt?.getTime() ?? null, "expires_at"),
          firstTokenAt: v(null, "first_token_at"),
        })
        .from(sql`(SELECT 1)`)
        .where(sql`(${pending}) < ${PENDING_REGISTRATIONS_MAX}`),
    )
    .returning({ id: oauthClients.id });
}

/**
 * Housekeeping: clients known by a metadata document whose cache lapsed over a day ago and that no
 * consent and no grant still refers to (they are only a cache: the next use fetches the document).
 */
export async function deleteLapsedDocumentClients(db: Db, before: Date) {
  const gone = await db
    .delete(oauthClients)
    .where(
      and(
        eq(oauthClients.source, "metadata"),
        isNull(oauthClients.disabledAt), // a disabled one stays: deleting it would let its document bring it back
        lt(oauthClients.expiresAt, before),
        sql`NOT EXISTS (SELECT 1 FROM ${oauthConsents} WHERE ${oauthConsents.clientId} = ${oauthClients.id})`,
        sql`NOT EXISTS (SELECT 1 FROM ${sessions} WHERE ${sessions.clientId} = ${oauthClients.id} AND ${sessions.revokedAt} IS NULL)`,
      ),
    )
    .returning({ id: oauthClients.id });
  return gone.length;
}

/** Housekeeping: self-registered clients that lapsed without ever getting a token. */
export async function deleteLapsedRegistrations(db: Db, now: Date) {
  const gone = await db
    .delete(oauthClients)
    .where(and(eq(oauthClients.source, "dynamic"), isNull(oauthClients.firstTokenAt), lt(oauthClients.expiresAt, now)))
    .returning({ id: oauthClients.id });
  return gone.length;
}

/** A client as its own source says it is: OAUTH_CLIENTS, or its client ID metadata document. */
export interface ConfiguredClientRow {
  id: string;
  name: string;
  uri: string | null;
  redirectUris: string[];
  secretHash: string | null;
  grantTypes: string[];
  scope: string;
  resources: string[];
}

/**
 * Stores a client whose row its source owns (the configuration, a metadata document's cache), or
 * brings the row up to it, in one statement: two first uses at once make one row. Only a row of the
 * same source is changed: one registered another way under the same id is left as it is (no row comes
 * back). An admin's disabling (disabled_at) and created_at survive.
 */
export function upsertSourcedClient(db: Db, row: ConfiguredClientRow & { source: "config" | "metadata"; expiresAt: Date | null }, now: Date) {
  return db
    .insert(oauthClients)
    .values({ ...row, createdAt: now })
    .onConflictDoUpdate({
      target: oauthClients.id,
      set: {
        name: sql`excluded.name`,
        uri: sql`excluded.uri`,
        redirectUris: sql`excluded.redirect_uris`,
        secretHash: sql`excluded.secret_hash`,
        grantTypes: sql`excluded.grant_types`,
        scope: sql`excluded.scope`,
        resources: sql`excluded.resources`,
        expiresAt: sql`excluded.expires_at`,
      },
      setWhere: eq(oauthClients.source, row.source),
    })
    .returning()
    .get();
}
