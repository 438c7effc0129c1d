import type { Config } from "../../config";

/**
 * Fetching a client ID metadata document (draft-ietf-oauth-client-id-metadata-document, "CIMD"): the
 * client_id is a URL anyone may send, so the fetch is a server-side request forgery surface. The
 * rules here: which URLs are client ids at all, which hosts are never fetched, and a fetch with no
 * redirects, a time cap and a size cap. Nothing of the document's body is ever logged.
 */

/** Why a document was not used: the reason logged (client_document_refused), never the body. */
export class DocumentRefusal extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "DocumentRefusal";
  }
}

const MAX_ID_LENGTH = 512; // usableClient's cap on any client_id; a CIMD id should be short (the draft: shown to users)
const MAX_BYTES = 5 * 1024; // the draft's recommended read limit (Security Considerations, "Maximum Response Size")
const TIME_CAP_MS = 3_000;

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * Whether this deployment is a local one: its own ISSUER is http on a loopback host (npm run dev, the
 * tests). Only then are documents on loopback (http or https) fetched, so a developer's client, or a
 * test's document server, can serve one. The draft allows exactly this relaxation for an authorization
 * server itself on loopback and forbids it in production. A deployed Worker has an https ISSUER, so
 * the exception can never apply there; and a Worker cannot reach private or loopback addresses
 * anyway (Cloudflare's network refuses them), which is also why a public name that resolves to such
 * an address (DNS rebinding) is not a hole in production: the host checks below are the first line,
 * the platform the second.
 */
export function loopbackDevelopment(config: Pick<Config, "ISSUER">): boolean {
  const issuer = new URL(config.ISSUER);
  return issuer.protocol === "http:" && LOOPBACK_NAMES.has(issuer.hostname);
}

/** Whether a client_id is meant as a document URL (the draft: generated ids never start with https://). Cheap: the full check is documentUrlProblem. */
export function looksLikeDocumentId(config: Pick<Config, "ISSUER">, clientId: string): boolean {
  return clientId.startsWith("https://") || (clientId.startsWith("http://") && loopbackDevelopment(config));
}

/**
 * What is wrong with `id` as a Client Identifier URL to fetch, or null. The draft (section 3): https,
 * no userinfo, a path, no dot segments, no fragment (a query is only discouraged, so it is taken).
 * The id must be exactly its own normalized form: that refuses dot segments, an empty userinfo, a
 * missing path, upper-case scheme or host, a default port and numeric-shorthand IPv4 hosts in one
 * rule, and makes the URL fetched the very string the document's client_id must equal. A path of
 * "/" alone is refused too (NOT RECOMMENDED by the draft: a site's root is not a client's document).
 */
export function documentUrlProblem(config: Pick<Config, "ISSUER">, id: string): string | null {
  if (id.length > MAX_ID_LENGTH) return "id_too_long";
  if (!URL.canParse(id)) return "id_not_url";
  const url = new URL(id);
  if (url.href !== id) return "id_not_normalized";
  if (url.username || url.password) return "id_has_userinfo";
  if (id.includes("#")) return "id_has_fragment";
  if (url.pathname === "/") return "id_has_no_path";
  const local = loopbackDevelopment(config);
  const loopback = LOOPBACK_NAMES.has(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && local && loopback)) return "not_https";
  if (loopback ? !local : specialUseHost(url.hostname)) return "special_use_host";
  // Never a request to this Worker itself, nor to its host spelled with a trailing dot.
  if (url.hostname.endsWith(".") || url.origin === new URL(config.ISSUER).origin) return "own_origin";
  return null;
}

// Names that never denote a public host: RFC 6761 (localhost, invalid, test), RFC 6762 (local),
// RFC 8375 (home.arpa) and ICANN's private-use .internal; and any single-label name.
const SPECIAL_SUFFIXES = ["localhost", "local", "internal", "home.arpa", "invalid", "test"];

/** Whether a URL's hostname (as WHATWG URL serializes it) is a special-use name or address (RFC 6890): never fetched. */
export function specialUseHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[")) return specialIpv6(host.slice(1, -1));
  const v4 = ipv4(host);
  if (v4) return specialIpv4(v4);
  if (!host.includes(".")) return true;
  return SPECIAL_SUFFIXES.some((s) => host === s || host.endsWith(`.${s}`));
}

function ipv4(host: string): number[] | null {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return parts.map(Number);
}

/** [first octet, prefix bits of the second, ...] ranges of RFC 6890 and its updates that are not global. */
const SPECIAL_V4: [number[], number][] = [
  [[0], 8], // "this network"
  [[10], 8], // private
  [[100, 64], 10], // CGNAT (shared address space)
  [[127], 8], // loopback
  [[169, 254], 16], // link-local
  [[172, 16], 12], // private
  [[192, 0, 0], 24], // IETF protocol assignments
  [[192, 0, 2], 24], // documentation
  [[192, 88, 99], 24], // 6to4 relay anycast
  [[192, 168], 16], // private
  [[198, 18], 15], // benchmarking
  [[198, 51, 100], 24], // documentation
  [[203, 0, 113], 24], // documentation
  [[224], 4], // multicast
  [[240], 4], // reserved, and the broadcast address
];

function inPrefix(address: number[], prefix: number[], bits: number, width: number): boolean {
  for (let i = 0, left = bits; left > 0; i++, left -= width) {
    const mask = left >= width ? (1 << width) - 1 : ((1 << width) - 1) ^ ((1 << (width - left)) - 1);
    if (((address[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

function specialIpv4(a: number[]): boolean {
  return SPECIAL_V4.some(([prefix, bits]) => inPrefix(a, prefix, bits, 8));
}

/** The eight 16-bit groups of an IPv6 address as WHATWG URL serializes it (compressed, hex, no dotted quad). */
function ipv6Groups(address: string): number[] | null {
  const [head, tail, more] = address.split("::");
  if (more !== undefined) return null;
  const groups = (s: string | undefined) => (s ? s.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const left = groups(head);
  const right = groups(tail);
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  const all = [...left, ...Array<number>(Math.max(fill, 0)).fill(0), ...right];
  return all.length === 8 && all.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? all : null;
}

/**
 * IPv6: only global unicast (2000::/3) is fetched, less its special blocks. Everything else is refused:
 * unspecified and loopback, IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96) forms of any IPv4
 * address, unique-local (fc00::/7), link-local (fe80::/10), multicast.
 */
function specialIpv6(address: string): boolean {
  const g = ipv6Groups(address);
  if (!g) return true;
  if (!inPrefix(g, [0x2000], 3, 16)) return true;
  return (
    inPrefix(g, [0x2001, 0], 23, 16) || // IETF protocol assignments (Teredo, ORCHID, benchmarking...)
    inPrefix(g, [0x2001, 0x0db8], 32, 16) || // documentation
    inPrefix(g, [0x2002], 16, 16) // 6to4: an IPv4 address inside
  );
}

const isJsonType = (contentType: string | null) => {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type);
};

/** The Cache-Control max-age in seconds, or null when the answer names none. no-store and no-cache count as 0. */
export function maxAgeOf(cacheControl: string | null): number | null {
  const value = (cacheControl ?? "").toLowerCase();
  if (/(^|[\s,])no-(store|cache)\b/.test(value)) return 0;
  const m = /(^|[\s,])max-age\s*=\s*"?(\d{1,10})"?/.exec(value);
  return m ? Number(m[2]) : null;
}

/**
 * GETs the document at `url` (already judged by documentUrlProblem): 200 only, no redirect followed
 * (the draft: MUST NOT), JSON only, at most MAX_BYTES read, all within TIME_CAP_MS. Throws DocumentRefusal.
 */
export async function fetchDocument(url: string): Promise<{ json: unknown; maxAge: number | null }> {
  const signal = AbortSignal.timeout(TIME_CAP_MS);
  let res: Response;
  try {
    res = await fetch(url, { method: "GET", redirect: "manual", signal, headers: { accept: "application/json" } });
  } catch (err) {
    throw new DocumentRefusal(signal.aborted ? "timeout" : `unreachable:${(err as Error).name}`);
  }
  try {
    if (res.status >= 300 && res.status < 400) throw new DocumentRefusal("redirect");
    if (res.status !== 200) throw new DocumentRefusal(`status_${res.status}`);
    if (!isJsonType(res.headers.get("content-type"))) throw new DocumentRefusal("not_json_content_type");
    const declared = Number(res.headers.get("content-length") ?? "0");
    if (declared > MAX_BYTES) throw new DocumentRefusal("too_large");
    const text = await readCapped(res, signal);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new DocumentRefusal("not_json");
    }
    return { json, maxAge: maxAgeOf(res.headers.get("cache-control")) };
  } finally {
    // Whatever was left unread is let go (a refused or oversized body is never read to its end).
    await res.body?.cancel().catch(() => {});
  }
}

/** The body as text, refusing past MAX_BYTES however the server frames it (no Content-Length, chunked, lying). */
async function readCapped(res: Response, signal: AbortSignal): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_BYTES) throw new DocumentRefusal("too_large");
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof DocumentRefusal) throw err;
    throw new DocumentRefusal(signal.aborted ? "timeout" : "read_failed");
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new DocumentRefusal("not_json");
  }
}
