import { defineConfig } from "vite";

// The demo app on http://localhost:5173 (CORS_ORIGINS in .dev.vars); the API is VITE_API_URL or
// http://localhost:8787. `npm run demo -- --port 8788 --app-port 5174` moves both (docs/development.md#ports).
export default defineConfig({
  root: import.meta.dirname,
  // localhost, the origin CORS_ORIGINS allows (127.0.0.1 is another site to the browser).
  server: { port: 5173, strictPort: true, host: "localhost" },
  preview: { port: 5173, strictPort: true, host: "localhost" },
});
