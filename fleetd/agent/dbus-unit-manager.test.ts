import { describe, expect, it } from "vitest";
import { hasInstallSection, isUnitFileName, unitObjectPath } from "./dbus-unit-manager";

// The manager itself runs against real systemd inside a VM (test/e2e/dbus-unit-manager.test.ts);
// these are the pure pieces it relies on to map signals to names and decide on enablement.
describe("unitObjectPath", () => {
  it("escapes every byte outside [A-Za-z0-9] like systemd's bus_label_escape", () => {
    expect(unitObjectPath("web@1.service")).toBe("/org/freedesktop/systemd1/unit/web_401_2eservice");
    expect(unitObjectPath("dbus.service")).toBe("/org/freedesktop/systemd1/unit/dbus_2eservice");
    expect(unitObjectPath("a-b_c.mount")).toBe("/org/freedesktop/systemd1/unit/a_2db_5fc_2emount");
  });
});

describe("hasInstallSection", () => {
  it("finds an [Install] header on its own line", () => {
    expect(hasInstallSection("[Unit]\nDescription=x\n\n[Install]\nWantedBy=multi-user.target\n")).toBe(true);
  });
  it("ignores the word in values and comments", () => {
    expect(hasInstallSection("[Service]\nExecStart=/bin/echo [Install]\n# [Install] later\n")).toBe(false);
  });
});

describe("isUnitFileName", () => {
  it("accepts unit names and rejects temp files and bare suffixes", () => {
    expect(isUnitFileName("web@1.service")).toBe(true);
    expect(isUnitFileName("x.timer")).toBe(true);
    expect(isUnitFileName(".web@1.service.123.tmp")).toBe(false);
    expect(isUnitFileName(".service")).toBe(false);
    expect(isUnitFileName("notes.txt")).toBe(false);
  });
});
