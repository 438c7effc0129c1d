import { defineConfig } from "vite";

// The demo app on http://localhost:5173 (CORS_ORIGINS in .dev.vars); the API is VITE_API_URL or
// http://localhost:8787.
export default defineConfig({
  root: import.meta.dirname,
  server: { port: 5173, strictPort: true, host: "127.0.0.1" },
  preview: { port: 5173, strictPort: true, host: "127.0.0.1" },
});
