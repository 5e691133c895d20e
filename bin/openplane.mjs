#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader when no build exists, so
// `npm start` works straight after `npm ci`. tsx is a runtime dependency anyway:
// it loads the TypeScript graphs named in langgraph.json.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { register } from "tsx/esm/api";

const built = fileURLToPath(new URL("../dist/bin/openplane.js", import.meta.url));
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  register();
  // The same loader then imports the user's graphs (src/lib/import-module.ts).
  globalThis[Symbol.for("openplane.tsx-loader")] = true;
  await import("../src/bin/openplane.ts");
}
