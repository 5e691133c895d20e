import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.js";

describe("freePort", () => {
  it("returns a port in the valid range", async () => {
    const port = await freePort();
    expect(Number.isInteger(port)).toBe(true);
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65_536);
  });

  it("returns a port that can be bound on 127.0.0.1", async () => {
    const port = await freePort();
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("returns distinct ports to concurrent callers", async () => {
    const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    // The OS may in theory hand out a port again once it is closed; in practice
    // ephemeral ports are assigned round-robin, so five in a row differ.
    expect(new Set(ports).size).toBe(ports.length);
  });
});
