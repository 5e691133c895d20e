import { describe, expect, it } from "vitest";
import { COMMANDS, UsageError, helpText, parseCliArgs } from "../../src/cli/args.js";

function usageError(argv: string[]): UsageError {
  try {
    parseCliArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error(`expected parseCliArgs(${JSON.stringify(argv)}) to throw`);
}

describe("parseCliArgs", () => {
  it("defaults to up on ./langgraph.json, 127.0.0.1:2024", () => {
    expect(parseCliArgs([])).toEqual({
      command: "up",
      config: "./langgraph.json",
      port: 2024,
      portGiven: false,
      host: "127.0.0.1",
      help: false,
      version: false,
    });
  });

  it.each(COMMANDS)("accepts the %s command", (command) => {
    const args = parseCliArgs([command]);
    expect(args.command).toBe(command);
    expect(args.port).toBe(2024);
    expect(args.config).toBe("./langgraph.json");
  });

  it("reads --config, --port and --host, long and short", () => {
    expect(parseCliArgs(["serve", "--config", "x/lg.json", "--port", "8123", "--host", "0.0.0.0"])).toMatchObject({
      command: "serve",
      config: "x/lg.json",
      port: 8123,
      host: "0.0.0.0",
    });
    expect(parseCliArgs(["-c", "a.json", "-p", "0"])).toMatchObject({ command: "up", config: "a.json", port: 0 });
    expect(parseCliArgs(["worker", "--port=65535"]).port).toBe(65535);
  });

  it("tells whether --port was given (a worker binds a port only then)", () => {
    expect(parseCliArgs(["worker"]).portGiven).toBe(false);
    expect(parseCliArgs(["worker", "--port", "2024"])).toMatchObject({ port: 2024, portGiven: true });
  });

  it("reads --help and --version", () => {
    expect(parseCliArgs(["--help"]).help).toBe(true);
    expect(parseCliArgs(["serve", "-h"])).toMatchObject({ command: "serve", help: true });
    expect(parseCliArgs(["-v"]).version).toBe(true);
  });

  it.each([
    [["--bogus"], /bogus/],
    [["serve", "--port"], /port/],
    [["--port", "abc"], /--port must be a number/],
    [["--port", "65536"], /--port must be a number/],
    [["--port", "-1"], /port/],
    [["--port", "80.5"], /--port must be a number/],
    [["--port", ""], /--port must be a number/],
    [["deploy"], /unknown command "deploy"/],
    [["serve", "extra"], /unexpected argument "extra"/],
    [["--host", " "], /--host must not be empty/],
  ])("rejects %j with a one-line UsageError", (argv, pattern) => {
    const err = usageError(argv);
    expect(err.message).toMatch(pattern);
    expect(err.message).not.toContain("\n");
    expect(err.message.length).toBeGreaterThan(0);
  });

  it("names the valid commands when the command is unknown", () => {
    const msg = usageError(["start"]).message;
    for (const c of COMMANDS) expect(msg).toContain(c);
  });
});

describe("helpText", () => {
  it("has a main text listing every command and one per command", () => {
    for (const c of COMMANDS) {
      expect(helpText()).toContain(c);
      expect(helpText(c)).toContain(`openplane ${c}`);
    }
  });
});
