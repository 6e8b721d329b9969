import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

/** The live page: built into dist/ui, served by the agent at /ui/ (src/api/routes/ui.ts). */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/ui/",
  build: {
    outDir: fileURLToPath(new URL("../dist/ui", import.meta.url)),
    emptyOutDir: true,
    // Cytoscape is most of the bundle; one file is fine for a page served from localhost.
    chunkSizeWarningLimit: 1024,
  },
});
