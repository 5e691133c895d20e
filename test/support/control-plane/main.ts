/**
 * Runs the control-plane emulator by hand, for demos:
 *
 *   npx tsx test/support/control-plane/main.ts --port 8100 [--api-key K] [--tenant T] [--listener L]
 *
 * It prints the environment for `openplane up` and accepts the v2 calls
 * (POST/PATCH/DELETE /v2/deployments ...) with curl; see docs/listener.md.
 */
import { parseArgs } from "node:util";
import { startEmulator } from "./server.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8100" },
    host: { type: "string", default: "127.0.0.1" },
    "api-key": { type: "string" },
    tenant: { type: "string" },
    listener: { type: "string" },
    "base-path": { type: "string", default: "/api-host" },
  },
});

const em = await startEmulator({
  port: Number(values.port),
  host: values.host,
  apiKey: values["api-key"],
  tenantId: values.tenant,
  basePath: values["base-path"],
});
const listener = em.store.addListener(values.listener);
process.stdout.write(`control-plane emulator on ${em.url}

Start a listener against it:
  OPENPLANE_CONTROL_PLANE_URL=${em.url} \\
  OPENPLANE_CONTROL_PLANE_API_KEY=${em.apiKey} \\
  OPENPLANE_TENANT_ID=${em.tenantId} \\
  OPENPLANE_LISTENER_ID=${listener.id} \\
  npx openplane up --port 8200

Create a deployment from a local project:
  curl -s ${em.url}/v2/deployments -H 'X-Api-Key: ${em.apiKey}' -H 'X-Tenant-Id: ${em.tenantId}' \\
    -H 'content-type: application/json' -d '{"name":"agent","source":"internal_source",
    "source_config":{"listener_id":"${listener.id}"},
    "source_revision_config":{"langgraph_config_path":"'$PWD'/langgraph.json"},"secrets":[]}'
Then: curl http://127.0.0.1:8200/agent/info
`);
const stop = () => void em.stop().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
