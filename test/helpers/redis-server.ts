/**
 * Finding and pinging a redis-server, shared by the global setup (./global-setup.ts)
 * and the durability tests' private redis-server (./cluster.ts).
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { Redis } from "ioredis";

/** The path of an executable `redis-server` on PATH (or in the usual system dirs), or null. */
export async function findRedisServer(): Promise<string | null> {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  for (const dir of [...dirs, "/usr/bin", "/usr/local/bin", "/usr/sbin"]) {
    const candidate = join(dir, "redis-server");
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Whether the Redis at `uri` answers PING, through a fresh connection that does not retry. */
export async function pingRedis(uri: string, connectTimeoutMs: number): Promise<boolean> {
  const client = new Redis(uri, {
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
