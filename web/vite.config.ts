// The console builds into dist/web/, which the server serves at /. `npm run dev:web` serves it
// with hot reload and sends /v1 to a running server (GANTRY_SERVER, default the quick start's).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { specValidator } from './spec-validator-plugin';

const here = fileURLToPath(new URL('.', import.meta.url));
const server = process.env.GANTRY_SERVER ?? 'http://127.0.0.1:7070';

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react(), specValidator()],
  build: { outDir: fileURLToPath(new URL('../dist/web', import.meta.url)), emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1500 },
  server: { proxy: { '/v1': { target: server, ws: true, changeOrigin: false } } },
});
