import { existsSync } from "node:fs";
import { importUserExport } from "../lib/import-module.js";
import { createCustomAuth, isAuthInstance } from "./custom.js";
import type { AuthProvider } from "./types.js";

export class AuthLoadError extends Error {}

/**
 * Imports the `Auth` instance langgraph.json's `auth.path` names
 * ("./auth.ts:auth"; without ":name" the default export), with tsx like the
 * graphs, so it resolves `@langchain/langgraph-sdk` from its own project
 * first, then from openplane's.
 */
export async function loadCustomAuth(file: string, exportName: string): Promise<AuthProvider> {
  if (!existsSync(file)) throw new AuthLoadError(`auth.path: file not found: ${file}`);
  const value = await importUserExport(file, exportName);
  if (value === undefined) throw new AuthLoadError(`auth.path: ${file} has no export named "${exportName}"`);
  if (!isAuthInstance(value)) {
    throw new AuthLoadError(`auth.path: "${exportName}" in ${file} is not an Auth instance (new Auth() from @langchain/langgraph-sdk/auth)`);
  }
  return createCustomAuth(value);
}
