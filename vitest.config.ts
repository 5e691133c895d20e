import { defineConfig } from "vitest/config";

// Three tiers (see DESIGN.md "Tests"):
// - unit: no services.
// - integration: real Postgres + Redis from POSTGRES_URI / REDIS_URI, or started
//   by test/helpers/global-setup.ts (embedded PostgreSQL, redis-server on PATH).
// - e2e: same services; spawns the CLI and drives it with the official SDKs.
// groupOrder runs the tiers one after another: the machines have 2 cores.
const globalSetup = ["./test/helpers/global-setup.ts"];

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup,
          testTimeout: 30_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup,
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
      // soak: long, many-cycle durability runs (test/soak/). Only with OPENPLANE_SOAK=1
      // (`npm run test:soak`), so a plain `vitest run` / `npm test` never includes it.
      ...(process.env.OPENPLANE_SOAK === "1"
        ? [
            {
              test: {
                name: "soak",
                include: ["test/soak/**/*.test.ts"],
                globalSetup,
                testTimeout: 900_000,
                hookTimeout: 180_000,
                fileParallelism: false,
                sequence: { groupOrder: 3 },
              },
            },
          ]
        : []),
    ],
  },
});
