// What `npm run deploy` checks before it uploads anything: configuration that wrangler accepts but
// that would fail (or be unsafe) at run time. Returns one message per problem, each naming the fix.
// `checkVars` is the Worker's own check of its vars (src/config.ts), so nothing the Worker would
// refuse gets through.
const MAX_ITERATIONS = 100_000; // production Workers refuse PBKDF2 above this
const MAIL_QUEUE_BINDING = "MAIL_QUEUE";
export const MAIL_ATTEMPTS = 6; // MAIL_ATTEMPTS in src/mail-queue.ts (test/node/deploy.test.ts holds them equal)

// A host's site (what SameSite compares) is its registrable domain: the last two labels, or three
// under a public suffix of two labels. These are the common ones (the full list is the Public
// Suffix List); each *.workers.dev and *.pages.dev subdomain is a site of its own.
const TWO_LABEL_SUFFIXES = new Set(
  (
    "workers.dev pages.dev github.io vercel.app netlify.app herokuapp.com fly.dev onrender.com web.app firebaseapp.com " +
    "azurewebsites.net co.uk org.uk ac.uk gov.uk com.au net.au org.au co.nz co.jp ne.jp or.jp com.br com.cn co.in co.za " +
    "com.mx co.kr com.tr com.sg com.hk"
  ).split(" "),
);
export function siteOf(host) {
  const labels = host.toLowerCase().replace(/\.$/, "").split(".");
  return labels.slice(TWO_LABEL_SUFFIXES.has(labels.slice(-2).join(".")) ? -3 : -2).join(".");
}

// Domains reserved for examples (RFC 2606, RFC 6761): no mail is ever sent from them.
const SAMPLE_DOMAIN = /(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$/i;

/** The social sign-in providers in [vars] (an unreadable list is the Worker's check to report). */
function providersOf(vars) {
  try {
    const list = JSON.parse(String(vars.OAUTH_PROVIDERS || "[]"));
    return Array.isArray(list) ? list.filter((p) => p && typeof p.id === "string") : [];
  } catch {
    return [];
  }
}

/** Each provider's callback URL, to register at the provider (printed by the deploy). */
export function callbackUrls(config) {
  const vars = config.vars ?? {};
  const issuer = String(vars.ISSUER ?? "").replace(/\/$/, "");
  return providersOf(vars).map((p) => `${p.id}: ${issuer}/oauth/${p.id}/callback`);
}

export function preflight(config, checkVars) {
  const problems = [];
  const vars = config.vars ?? {};
  const issuer = String(vars.ISSUER ?? "");
  if (!issuer) {
    problems.push(
      "ISSUER is empty. Set it in wrangler.toml [vars] to this Worker's https URL: https://edge-auth-api.<your subdomain>.workers.dev " +
        "(the subdomain is under Workers & Pages in the Cloudflare dashboard), or your custom domain.",
    );
  } else if (!/^https:\/\/[^/]+$/.test(issuer)) {
    problems.push(`ISSUER must be the Worker's https origin, like https://auth.example.com (it is "${issuer}").`);
  }
  const db = (config.d1_databases ?? []).find((d) => d.binding === "DB");
  if (!db?.database_id)
    problems.push("The D1 database has no database_id. Run `npx wrangler d1 create edge-auth` and put the printed id under [[d1_databases]] in wrangler.toml.");
  const kv = (config.kv_namespaces ?? []).find((k) => k.binding === "REVOKED");
  if (!kv?.id)
    problems.push(
      "The REVOKED KV namespace has no id. Run `npx wrangler kv namespace create REVOKED` and put the printed id under [[kv_namespaces]] in wrangler.toml.",
    );
  // Mail asked for by address goes through a queue this Worker both feeds and consumes (src/mail-queue.ts).
  const producer = (config.queues?.producers ?? []).find((q) => q.binding === MAIL_QUEUE_BINDING);
  const consumer = producer && (config.queues?.consumers ?? []).find((q) => q.queue === producer.queue);
  if (!producer || !consumer)
    problems.push(
      `The mail queue is missing: wrangler.toml needs [[queues.producers]] with binding = "${MAIL_QUEUE_BINDING}" and a [[queues.consumers]] for the same queue ` +
        "(as shipped: edge-auth-mail). Create the queue once with `npx wrangler queues create edge-auth-mail` (docs/deploy.md).",
    );
  else if (consumer.max_retries !== undefined && consumer.max_retries < MAIL_ATTEMPTS - 1)
    problems.push(
      `[[queues.consumers]] max_retries must be at least ${MAIL_ATTEMPTS - 1}: the consumer tries a mail ${MAIL_ATTEMPTS} times (src/mail-queue.ts).`,
    );
  const appUrl = String(vars.APP_URL ?? "");
  if (!/^https:\/\//.test(appUrl))
    problems.push(
      "APP_URL must be the https page of your app that completes mailed links (verification, reset, email change), like https://app.example.com/account.",
    );
  const origins = String(vars.CORS_ORIGINS ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  const plain = origins.filter((o) => !o.startsWith("https://"));
  if (plain.length)
    problems.push(`CORS_ORIGINS must list https origins in production (browsers send cookies to the API over https only): ${plain.join(", ")}.`);
  // Passkeys: the pages that use them (WEBAUTHN_ORIGINS, else CORS_ORIGINS) must be https and each
  // on the relying-party id's domain (WEBAUTHN_RP_ID, else the first origin's host), or browsers refuse.
  const passkeyOrigins = String(vars.WEBAUTHN_ORIGINS ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  const pageOrigins = passkeyOrigins.length ? passkeyOrigins : origins;
  const plainPages = passkeyOrigins.filter((o) => !o.startsWith("https://"));
  if (plainPages.length)
    problems.push(`WEBAUTHN_ORIGINS must list https origins in production (browsers allow passkeys on https pages only): ${plainPages.join(", ")}.`);
  const hostOf = (o) => (URL.canParse(o) ? new URL(o).hostname : "");
  const rpId = String(vars.WEBAUTHN_RP_ID ?? "") || hostOf(pageOrigins[0] ?? "");
  // (An http origin is reported above already.)
  const offDomain = pageOrigins.filter((o) => o.startsWith("https://") && hostOf(o) !== rpId && !hostOf(o).endsWith(`.${rpId}`));
  if (offDomain.length)
    problems.push(
      `Passkeys: ${offDomain.join(", ")} is not on the relying-party domain "${rpId}". Set WEBAUTHN_RP_ID to a domain every app origin shares (like example.com), or list only those origins in WEBAUTHN_ORIGINS.`,
    );
  // Cookie mode: the refresh cookie is SameSite=Strict (or Lax), which a browser sends on the app's
  // fetch only when the API is on the app's own site. Across sites it is never sent: every refresh
  // fails, and each reload signs the user out. Refused when no app origin shares the API's site (with
  // one that does, the others may be apps in token mode).
  const sameSite = String(vars.COOKIE_SAMESITE ?? "Strict");
  const issuerHost = /^https:\/\/[^/]+$/.test(issuer) ? hostOf(issuer) : "";
  if (issuerHost && sameSite !== "None") {
    const apps = origins.filter((o) => o.startsWith("https://") && hostOf(o));
    const crossSite = apps.filter((o) => siteOf(hostOf(o)) !== siteOf(issuerHost));
    if (crossSite.length && crossSite.length === apps.length) {
      const site = siteOf(hostOf(crossSite[0]));
      problems.push(
        `Cookie mode cannot work: ISSUER is on the site ${siteOf(issuerHost)}, while CORS_ORIGINS has only other sites (${crossSite.join(", ")}), so the ` +
          `SameSite=${sameSite} refresh cookie is never sent. Put the API on a custom domain on the app's site: ` +
          `routes = [{ pattern = "auth.${site}", custom_domain = true }] in wrangler.toml and ISSUER = "https://auth.${site}". ` +
          `(Apps that use token mode only may set COOKIE_SAMESITE = "None" instead.)`,
      );
    }
  }
  problems.push(...routeProblems(config, issuer), ...browserOriginProblems(vars, origins));
  const mailFrom = String(vars.MAIL_FROM ?? "");
  const mailDomain = mailFrom.split("@").pop() ?? "";
  if (!mailFrom || SAMPLE_DOMAIN.test(mailDomain))
    problems.push(
      `MAIL_FROM is "${mailFrom}", a sample address: no mail can be sent from ${mailDomain || "it"}. Set it to an address on a domain ` +
        "you onboarded for sending (Cloudflare dashboard: Email, then Email Sending), like no-reply@yourdomain.com.",
    );
  // Social sign-in: a production Worker cannot reach a provider on a private address (the local IdP).
  for (const p of providersOf(vars)) {
    for (const key of ["issuer", "server", "api"]) {
      if (typeof p[key] === "string" && p[key].startsWith("http:"))
        problems.push(`OAUTH_PROVIDERS: provider ${p.id} has ${key} ${p[key]}, a local address a deployed Worker cannot reach. Use the provider's https URL.`);
    }
  }
  // Their secrets: a secret not declared in [secrets] required is neither checked by the deploy nor
  // loaded by `wrangler dev`; the providers would then be off (provider_unavailable).
  const listed = providersOf(vars).map((p) => p.id);
  if (listed.length && config.secrets && !(config.secrets.required ?? []).includes("OAUTH_CLIENT_SECRETS"))
    problems.push(
      `OAUTH_PROVIDERS lists ${listed.join(", ")}, but OAUTH_CLIENT_SECRETS is not in [secrets] required in wrangler.toml: add it, ` +
        "so wrangler refuses to deploy without the providers' secrets (set them with `npx wrangler secret put OAUTH_CLIENT_SECRETS`).",
    );
  // Signing keys: KV takes up to 60 s to show the ring everywhere and each isolate re-reads it every
  // minute, so a shorter propagation window would let a location sign with a key verifiers lack.
  if (String(vars.SIGNING_KEYS ?? "secret") === "rotating" && Number(vars.KEY_PROPAGATION ?? 180) < 120)
    problems.push("KEY_PROPAGATION must be at least 120 seconds in production (KV's propagation plus each isolate's re-read of the key ring).");
  const required = config.secrets?.required ?? [];
  const neededKey = String(vars.SIGNING_KEYS ?? "secret") === "rotating" ? "JWT_WRAPPING_KEY" : "JWT_PRIVATE_KEY";
  if (config.secrets && !required.includes(neededKey))
    problems.push(
      `SIGNING_KEYS is "${vars.SIGNING_KEYS ?? "secret"}": add ${neededKey} to [secrets] required in wrangler.toml, so wrangler refuses to deploy without it.`,
    );
  if (Number(vars.PASSWORD_ITERATIONS ?? MAX_ITERATIONS) > MAX_ITERATIONS)
    problems.push(`PASSWORD_ITERATIONS must be at most ${MAX_ITERATIONS}: production Workers refuse more.`);
  // Everything else the Worker checks at run time; vars already reported above are not repeated.
  const named = new Set(
    ["ISSUER", "CORS_ORIGINS", "WEBAUTHN_ORIGINS", "PASSWORD_ITERATIONS", "APP_URL", "MAIL_FROM", "KEY_PROPAGATION"].filter((v) =>
      problems.some((p) => p.includes(v)),
    ),
  );
  for (const problem of checkVars(vars)) {
    if (!named.has(problem.split(/[.:]/)[0])) problems.push(`In [vars], ${problem} (the Worker would refuse to start).`);
  }
  return problems;
}

/** A route's host and path: "auth.example.com/*" or { pattern: "auth.example.com", custom_domain: true }. */
function routeOf(route) {
  const pattern = String(typeof route === "string" ? route : (route?.pattern ?? "")).replace(/^https?:\/\//, "");
  const slash = pattern.indexOf("/");
  return { pattern, host: (slash < 0 ? pattern : pattern.slice(0, slash)).toLowerCase(), path: slash < 0 ? "" : pattern.slice(slash) };
}

/**
 * Where the Worker is served must be ISSUER: tokens name it as their issuer, discovery and the JWKS
 * are found under it, mailed links and the refresh cookie go to it. A custom-domain ISSUER needs a
 * route or custom domain for its host (wrangler deploys happily without one, and the name then
 * reaches nothing); a workers.dev ISSUER needs workers_dev left on.
 */
export function routeProblems(config, issuer) {
  if (!/^https:\/\/[^/]+$/.test(issuer)) return []; // reported already
  const issuerHost = new URL(issuer).hostname;
  const routes = [...(config.route ? [config.route] : []), ...(config.routes ?? [])].map(routeOf);
  const problems = [];
  for (const r of routes.filter((r) => r.host !== issuerHost)) {
    problems.push(
      `routes: "${r.pattern}" serves this Worker on ${r.host}, but ISSUER is ${issuer}: tokens, discovery and the refresh cookie all name ` +
        `ISSUER's host. Make the route's host ${issuerHost} (routes = [{ pattern = "${issuerHost}", custom_domain = true }]), or set ISSUER = "https://${r.host}".`,
    );
  }
  for (const r of routes.filter((r) => r.host === issuerHost && !["", "/*"].includes(r.path))) {
    problems.push(
      `routes: "${r.pattern}" serves only ${r.path} of ${issuerHost}, while the API's routes are at the root: use "${issuerHost}/*" or a custom domain.`,
    );
  }
  if (issuerHost.endsWith(".workers.dev")) {
    if (config.workers_dev === false)
      problems.push(
        `ISSUER is on workers.dev (${issuer}), but workers_dev = false in wrangler.toml turns that URL off: remove the line, or use your custom domain as ISSUER.`,
      );
  } else if (!routes.some((r) => r.host === issuerHost)) {
    problems.push(
      `ISSUER is ${issuer}, but nothing in wrangler.toml serves this Worker there, so that name reaches nothing. Add ` +
        `routes = [{ pattern = "${issuerHost}", custom_domain = true }] (its zone must be on Cloudflare), or use the workers.dev URL as ISSUER.`,
    );
  }
  return problems;
}

/**
 * The browser side: the refresh cookie (cookie mode) and every call from the page at APP_URL need an
 * Origin the API allows. An empty CORS_ORIGINS refuses them all; an APP_URL off the list opens mailed
 * links on a page whose calls the browser blocks.
 */
export function browserOriginProblems(vars, origins) {
  if (!origins.length)
    return [
      "CORS_ORIGINS is empty, so the API allows no browser origin: the refresh cookie (cookie mode) is refused, and so is every call " +
        'from your app, the page at APP_URL included. List your app\'s https origins, like CORS_ORIGINS = "https://app.example.com".',
    ];
  const appUrl = String(vars.APP_URL ?? "");
  if (!/^https:\/\//.test(appUrl) || !URL.canParse(appUrl)) return []; // reported already
  const appOrigin = new URL(appUrl).origin;
  if (origins.some((o) => URL.canParse(o) && new URL(o).origin === appOrigin)) return [];
  return [
    `APP_URL is on ${appOrigin}, which CORS_ORIGINS (${origins.join(", ")}) does not list: the page that completes mailed links could not ` +
      `call the API. Add ${appOrigin} to CORS_ORIGINS, or set APP_URL to a page of an app it lists.`,
  ];
}
