// Signs in at the local oidc-provider (scripts/identity-providers.mjs) as a browser would, over plain
// HTTP: follows its redirects with a cookie jar, fills its login form with `login` (any name is an
// account there) and submits its consent form, until it sends the browser back to a `/callback`.
// Answers that callback's query. Shared by the workerd tests (test/social.ts) and `npm run docs:check`.
export async function signInAtLocalIdp(authorizeUrl, login) {
  const jar = new Map();
  let url = String(authorizeUrl);
  let init = {};
  for (let hop = 0; hop < 20; hop++) {
    const headers = new Headers(init.headers);
    headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair = ""] = c.split(";");
      const at = pair.indexOf("=");
      jar.set(pair.slice(0, at).trim(), pair.slice(at + 1));
    }
    const location = res.headers.get("location");
    if (location) {
      const next = new URL(location, url);
      if (next.pathname.endsWith("/callback")) return next.searchParams;
      url = next.href;
      init = {};
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`the IdP answered ${res.status} without a form: ${html.slice(0, 300)}`);
    const form = new URLSearchParams();
    for (const m of html.matchAll(/<input[^>]*>/g)) {
      const name = /name="([^"]+)"/.exec(m[0])?.[1];
      const value = /value="([^"]*)"/.exec(m[0])?.[1];
      if (name && value !== undefined) form.set(name, value);
    }
    if (/name="login"/.test(html)) {
      form.set("login", login);
      form.set("password", "anything");
    }
    url = new URL(action.replace(/&amp;/g, "&"), url).href;
    init = { method: "POST", body: form.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } };
  }
  throw new Error("the IdP never redirected back");
}
