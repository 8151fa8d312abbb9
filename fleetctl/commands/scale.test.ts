import { describe, expect, it } from "vitest";
import { CliError } from "../cli-error";
import { parseScaleArgument } from "./scale";

describe("fleetctl scale's argument", () => {
  it("reads TEMPLATE=COUNT, mangling the name", () => {
    expect(parseScaleArgument("web@.service=5")).toEqual(["web@.service", 5]);
    expect(parseScaleArgument("web@=0")).toEqual(["web@.service", 0]);
  });

  it("quotes a count too large to hold exactly as it was given, not rounded", () => {
    expect(() => parseScaleArgument("web@.service=99999999999999999999")).toThrow(
      new CliError("Cannot scale web@.service to 99999999999999999999 instances: the count is far more than fleetd allows; use a whole number such as web@.service=5"),
    );
    // The largest exact count still goes to fleetd, which names its own maximum.
    expect(parseScaleArgument(`web@.service=${Number.MAX_SAFE_INTEGER}`)).toEqual(["web@.service", Number.MAX_SAFE_INTEGER]);
  });

  it("refuses what is not TEMPLATE=COUNT, and non-templates", () => {
    expect(() => parseScaleArgument("web@.service=-1")).toThrow('Invalid scale argument "web@.service=-1": use TEMPLATE=COUNT, e.g. web@.service=5');
    expect(() => parseScaleArgument("web.service=2")).toThrow("Cannot scale web.service: it is not a template");
  });
});
