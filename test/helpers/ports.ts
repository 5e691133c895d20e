import { createServer } from "node:net";

/**
 * Asks the OS for a free TCP port on 127.0.0.1 by binding port 0, reading the
 * assigned port and closing the socket again.
 *
 * The port is only free at the moment of the call: another process may take it
 * before the caller binds it, so callers that start a server should retry on
 * EADDRINUSE rather than assume success.
 *
 * @example
 * const port = await freePort();
 * server.listen(port, "127.0.0.1");
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error(`unexpected server address: ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
