import { existsSync } from "node:fs";
import { importUserExport } from "../lib/import-module.js";
import type { CustomRoutes } from "./deps.js";

export class CustomAppError extends Error {}

/**
 * Imports the Hono app langgraph.json's `http.app` names ("./app.ts:app"),
 * with tsx like the graphs. Any copy of Hono will do: createApp merges the
 * app's route list (its middleware and routes, in order) in front of ours.
 */
export async function loadCustomApp(file: string, exportName: string): Promise<CustomRoutes["app"]> {
  if (!existsSync(file)) throw new CustomAppError(`http.app: file not found: ${file}`);
  const value = await importUserExport(file, exportName);
  if (value === undefined) throw new CustomAppError(`http.app: ${file} has no export named "${exportName}"`);
  if (!isHonoApp(value)) throw new CustomAppError(`http.app: "${exportName}" in ${file} is not a Hono app (new Hono() from "hono")`);
  return value;
}

export function isHonoApp(v: unknown): v is CustomRoutes["app"] {
  return typeof v === "object" && v !== null && Array.isArray((v as { routes?: unknown }).routes) && typeof (v as { fetch?: unknown }).fetch === "function";
}
