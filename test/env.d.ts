import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    // Test-only binding added in test/vitest.config.ts.
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      // The origin of scripts/client-documents.mjs (client ID metadata documents), set in test/vitest.config.ts.
      TEST_CLIENT_DOCUMENTS: string;
      // The origin of scripts/stand-ins.mjs (Pwned Passwords' range API, Turnstile's siteverify), set in test/vitest.config.ts.
      TEST_STAND_INS: string;
      // An optional secret (SIGNING_KEYS = "secret"), set in test/vitest.config.ts.
      JWT_PRIVATE_KEY: string;
    }
    // Types `exports.default` from "cloudflare:workers" as our worker.
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
  }
}
