import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { undefinedIfMissing } from "./missing";

describe("undefinedIfMissing", () => {
  const dir = mkdtemp(path.join(tmpdir(), "missing-"));
  afterAll(async () => rm(await dir, { recursive: true, force: true }));

  it("reads a path that does not exist as undefined", async () => {
    expect(await readFile(path.join(await dir, "nope"), "utf8").catch(undefinedIfMissing)).toBeUndefined();
  });

  it("throws every other failure (a directory read as a file: EISDIR)", async () => {
    await expect(readFile(await dir, "utf8").catch(undefinedIfMissing)).rejects.toMatchObject({ code: "EISDIR" });
  });
});
