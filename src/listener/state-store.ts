/**
 * What the listener must remember across restarts, in one JSON file under
 * OPENPLANE_DATA_DIR (mode 0600: it holds the desired state, secrets
 * included, so servers can be started while the control plane is down):
 * the last desired state, the databases we created, scheduled drops, failed
 * revisions, the last statuses written back, and each deployment's last good
 * revision. Writes are atomic (temp file + rename) and serialised.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { DesiredDeployment, ScheduledDrop } from "./types.js";

export interface PersistedState {
  version: 1;
  /** Identifies the source the desired state came from (its kind and address). */
  sourceKey: string | null;
  /** Null until a source answered once. */
  desired: DesiredDeployment[] | null;
  databases: Record<string, { name: string }>;
  drops: ScheduledDrop[];
  failed: Record<string, string>;
  reported: Record<string, string>;
  active: Record<string, DesiredDeployment>;
}

export const emptyState = (): PersistedState => ({
  version: 1,
  sourceKey: null,
  desired: null,
  databases: {},
  drops: [],
  failed: {},
  reported: {},
  active: {},
});

export interface StateStore {
  readonly state: PersistedState;
  /** Applies `change` and persists the result (writes are queued in order). */
  update(change: (s: PersistedState) => void): Promise<void>;
}

/** Opens the state file at `path`; with null, the state lives in memory only (nothing to remember). */
export async function openStateStore(path: string | null): Promise<StateStore> {
  if (path === null) {
    const state = emptyState();
    return { state, update: async (change) => change(state) };
  }
  const state = existsSync(path) ? parse(await readFile(path, "utf8"), path) : emptyState();
  let queue: Promise<void> = Promise.resolve();
  const write = async () => {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp`;
    await writeFile(tmp, JSON.stringify(state, null, 2), { mode: 0o600 });
    await rename(tmp, path);
  };
  return {
    state,
    update(change) {
      change(state);
      queue = queue.then(write, write);
      return queue;
    },
  };
}

function parse(text: string, path: string): PersistedState {
  let raw: Partial<PersistedState>;
  try {
    raw = JSON.parse(text) as Partial<PersistedState>;
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message}); move it away to start from an empty listener state`);
  }
  if (raw.version !== 1) throw new Error(`${path}: unknown listener state version ${String(raw.version)}`);
  return { ...emptyState(), ...raw };
}
