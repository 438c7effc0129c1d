// Client ID metadata documents on loopback, for the tests (test/oauth-client-documents.test.ts) and for
// trying an MCP client against `npm run dev` (whose http://localhost ISSUER lets loopback documents in).
// Every path names a behaviour and ends in a free name, so each test has its own client id (the
// document's URL); the served client_id is always the full URL asked, unless the behaviour says not.
//   /doc/<name>                   a good document (no Cache-Control: the server's default lifetime)
//   /custom/<b64url JSON>/<name>  a good document with these fields replaced (null removes one)
//   /max-age/<value>/<name>       a good document with Cache-Control: <value> (e.g. max-age=60, no-store)
//   /versioned/<name>             a good document whose client_name counts the fetches ("Versioned 1", ...)
//   /once/<name>                  a good document the first time, a 500 after
//   /delayed/<name>               a good document after 300 ms (two fetches at once overlap)
//   /mismatch/<name>              a document naming another client_id
//   /redirect/<name>              a 302 to /doc/<name>
//   /oversized/<name>             a valid document of 6 KB, with its Content-Length
//   /oversized-chunked/<name>     the same without Content-Length (chunked)
//   /slow/<name>                  answers after 5 s (past the fetch's 3 s cap)
//   /slow-body/<name>             sends the headers and a part of the body, then stalls 5 s
//   /wrong-type/<name>            a good document as text/html
//   /missing/<name>               404
//   /hits/<path>                  {"hits": n}: how many times <path> was fetched
// `node scripts/client-documents.mjs` serves them on CLIENT_DOCUMENTS_PORT (default 9300).
import { createServer } from "node:http";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function goodDocument(id, name = "Document Client") {
  return {
    client_id: id,
    client_name: name,
    client_uri: `${new URL(id).origin}/`,
    logo_uri: `${new URL(id).origin}/logo.png`,
    redirect_uris: ["http://127.0.0.1:3000/callback", "https://client.example.com/callback"],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
  };
}

const fromB64Url = (s) => JSON.parse(Buffer.from(s, "base64url").toString("utf8"));

export async function startClientDocuments({ port = 0, host = "127.0.0.1", unref = false } = {}) {
  const hits = new Map();
  const server = createServer(async (req, res) => {
    res.on("error", () => {}); // a fetch given up on (the slow ones) closes the socket under a late write
    const path = new URL(req.url, "http://x").pathname;
    const id = `${origin}${req.url}`;
    const send = (status, body, headers = {}) => {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    if (path.startsWith("/hits/")) return send(200, { hits: hits.get(path.slice(5)) ?? 0 });
    const count = (hits.get(path) ?? 0) + 1;
    hits.set(path, count);
    const [, kind, arg] = path.split("/");
    switch (kind) {
      case "doc":
        return send(200, goodDocument(id));
      case "custom": {
        const doc = { ...goodDocument(id), ...fromB64Url(arg) };
        for (const [k, v] of Object.entries(doc)) if (v === null) delete doc[k];
        return send(200, doc);
      }
      case "max-age":
        return send(200, goodDocument(id), { "cache-control": decodeURIComponent(arg) });
      case "versioned":
        return send(200, goodDocument(id, `Versioned ${count}`));
      case "once":
        return count === 1 ? send(200, goodDocument(id)) : send(500, { error: "down" });
      case "delayed":
        await sleep(300);
        return send(200, goodDocument(id));
      case "mismatch":
        return send(200, goodDocument(`${origin}/doc/someone-else`));
      case "redirect":
        res.writeHead(302, { location: `${origin}/doc/${arg}` });
        return res.end();
      case "oversized":
        return send(200, { ...goodDocument(id), padding: "x".repeat(6 * 1024) });
      case "oversized-chunked":
        res.writeHead(200, { "content-type": "application/json" });
        res.write(JSON.stringify({ ...goodDocument(id), padding: "x".repeat(3 * 1024) }).slice(0, -1));
        res.write(`, "more": "${"y".repeat(3 * 1024)}"}`);
        return res.end();
      case "slow":
        await sleep(5_000);
        return send(200, goodDocument(id));
      case "slow-body": {
        const text = JSON.stringify(goodDocument(id));
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.write(text.slice(0, 20));
        await sleep(5_000);
        return res.end(text.slice(20));
      }
      case "wrong-type":
        return send(200, goodDocument(id), { "content-type": "text/html" });
      default:
        return send(404, { error: "not_found" });
    }
  });
  const origin = await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(`http://${host}:${server.address().port}`));
  });
  if (unref) server.unref();
  return { origin, close: () => new Promise((resolve) => server.close(resolve)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const docs = await startClientDocuments({ port: Number(process.env.CLIENT_DOCUMENTS_PORT ?? 9300) });
  console.log(`client ID metadata documents: ${docs.origin}/doc/<any name> (see the list at the top of this file)`);
  const stop = () => docs.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
