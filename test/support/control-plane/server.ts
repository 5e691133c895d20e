/**
 * Starts the control-plane emulator on a port. `stop()` and `start()` take it
 * down and bring it back on the same port (an unreachable control plane);
 * `outage = true` makes it answer 503 instead (an erroring one).
 *
 * @example
 * const cp = await startEmulator();
 * const listener = cp.store.addListener();
 * // OPENPLANE_CONTROL_PLANE_URL=cp.url OPENPLANE_CONTROL_PLANE_API_KEY=cp.apiKey
 * // OPENPLANE_TENANT_ID=cp.tenantId OPENPLANE_LISTENER_ID=listener.id openplane up
 */
import { randomUUID } from "node:crypto";
import { serve } from "@hono/node-server";
import type { ServerType } from "@hono/node-server";
import { createEmulatorApp } from "./app.js";
import { EmulatorStore } from "./store.js";

export interface EmulatorOptions {
  port?: number;
  host?: string;
  /** Path prefix, as a self-hosted LangSmith serves the API under /api-host. Default "/api-host". */
  basePath?: string;
  apiKey?: string;
  tenantId?: string;
}

export interface Emulator {
  readonly store: EmulatorStore;
  /** Base URL to give the listener (includes the base path). */
  readonly url: string;
  readonly port: number;
  readonly apiKey: string;
  readonly tenantId: string;
  outage: boolean;
  /** Closes the port (connections refused) until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startEmulator(o: EmulatorOptions = {}): Promise<Emulator> {
  const apiKey = o.apiKey ?? `lsv2_emulator_${randomUUID().replace(/-/g, "")}`;
  const tenantId = o.tenantId ?? randomUUID();
  const basePath = o.basePath ?? "/api-host";
  const host = o.host ?? "127.0.0.1";
  const store = new EmulatorStore(tenantId);
  let server: ServerType | null = null;
  const em: Emulator = {
    store,
    url: "",
    port: o.port ?? 0,
    apiKey,
    tenantId,
    outage: false,
    async stop() {
      const s = server;
      server = null;
      if (!s) return;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
    async start() {
      if (server) return;
      const app = createEmulatorApp(store, { apiKey, basePath, outage: () => em.outage });
      const s = await new Promise<ServerType>((resolve, reject) => {
        const srv = serve({ fetch: app.fetch, port: em.port, hostname: host }, () => resolve(srv));
        srv.once("error", reject);
      });
      server = s;
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : em.port;
      Object.assign(em, { port, url: `http://${host}:${port}${basePath}` });
    },
  };
  await em.start();
  return em;
}
