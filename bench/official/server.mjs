// Starts the official in-memory LangGraph JS server (@langchain/langgraph-api) the way
// `langgraphjs dev` does (its cli/entrypoint.mjs), without the file watcher or the IPC
// channel to the CLI. Run by bench/lib/targets.ts as:
//   node --import tsx --import <langgraph-api>/dist/preload.mjs server.mjs '<payload JSON>'
// where the payload is StartServerSchema: { port, nWorkers, host, cwd, graphs }.
import { startServer } from "@langchain/langgraph-api/server";

const options = JSON.parse(process.argv.at(-1) ?? "{}");
process.env.PORT = String(options.port);
const { host, cleanup } = await startServer(options);
console.log(`official server listening on ${host}`);
let stopping = false;
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    if (stopping) process.exit(1);
    stopping = true;
    // Flushes its in-memory state to <cwd>/.langgraph_api, as the CLI's exit hook does.
    Promise.race([cleanup(), new Promise((r) => setTimeout(r, 3_000))]).finally(() => process.exit(0));
  });
}
