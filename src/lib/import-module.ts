import { pathToFileURL } from "node:url";
import { register as registerCjs } from "tsx/cjs/api";
import { register as registerEsm } from "tsx/esm/api";

/** Set once tsx's ESM loader is registered for the process (bin/openplane.mjs sets it too). */
const ESM_REGISTERED = Symbol.for("openplane.tsx-loader");
let cjsRegistered = false;

/**
 * Imports a user's module by path (a graph, the custom auth or app, an embeddings
 * function), TypeScript included, in ES module or CommonJS projects. tsx's loaders are
 * registered once for the process, without a namespace: a namespaced import (tsImport)
 * loads the module's whole dependency tree afresh, so each graph got its own copies of
 * @langchain/langgraph, @langchain/core and langsmith beside ours (measured: 77 MB of
 * RSS at idle for the bench's two graphs). Now a dependency the user's module shares with
 * openplane is one module instance whenever it resolves to the same file; a project
 * with its own node_modules still gets its own copies.
 */
export async function importUserModule(file: string): Promise<Record<string, unknown>> {
  const g = globalThis as { [ESM_REGISTERED]?: boolean };
  if (!g[ESM_REGISTERED]) {
    registerEsm();
    g[ESM_REGISTERED] = true;
  }
  if (!cjsRegistered) {
    registerCjs();
    cjsRegistered = true;
  }
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
}

/**
 * `exportName` of a user's module (see importUserModule): the named export, else that
 * key of the default export (a CommonJS module's exports); undefined when neither exists.
 */
export async function importUserExport(file: string, exportName: string): Promise<unknown> {
  const mod = await importUserModule(file);
  return mod[exportName] ?? (mod.default as Record<string, unknown> | undefined)?.[exportName];
}
