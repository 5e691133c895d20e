import { describe, expect, it } from "vitest";
import { AppError, ERROR_CODES, conflict, invalid, isAppError, notFound } from "../../src/domain/errors.js";
import { RUN_STATUSES, TERMINAL_RUN_STATUSES, isTerminal } from "../../src/domain/run.js";

describe("run statuses", () => {
  it("marks exactly success, error, timeout and interrupted as terminal", () => {
    expect(RUN_STATUSES.filter(isTerminal)).toEqual(["success", "error", "timeout", "interrupted"]);
    expect(TERMINAL_RUN_STATUSES).not.toContain("pending");
    expect(isTerminal("running")).toBe(false);
  });
});

describe("AppError", () => {
  it("carries a stable code mapped to an HTTP status", () => {
    expect(notFound("x").code).toBe("NOT_FOUND");
    expect(ERROR_CODES[notFound("x").code]).toBe(404);
    expect(ERROR_CODES[conflict("x").code]).toBe(409);
    expect(ERROR_CODES[invalid("x").code]).toBe(422);
    expect(ERROR_CODES.PAYLOAD_TOO_LARGE).toBe(413);
    const e = new AppError("CONFLICT", "busy", { cause: "why" });
    expect(isAppError(e)).toBe(true);
    expect(e.message).toBe("busy");
    expect(e.cause).toBe("why");
    expect(isAppError(new Error("plain"))).toBe(false);
  });
});
