import { describe, expect, it } from "vitest";
import { formatTable, formatTabbed } from "./tabwriter";

describe("Go tabwriter port (minwidth 0, tabwidth 8, padding 1, tabs)", () => {
  it("pads every column to the widest cell + 1, rounded up to 8, with tabs", () => {
    const out = formatTable([
      ["UNIT", "MACHINE", "ACTIVE", "SUB"],
      ["hello.service", "113f16a7.../172.17.8.103", "active", "running"],
      ["a.service", "-", "inactive", "dead"],
    ]);
    expect(out).toBe(
      "UNIT\t\tMACHINE\t\t\t\tACTIVE\t\tSUB\n" +
        "hello.service\t113f16a7.../172.17.8.103\tactive\t\trunning\n" +
        "a.service\t-\t\t\t\tinactive\tdead\n",
    );
  });

  it("makes a column of 7-wide cells one tab stop wide and of 8-wide cells two", () => {
    expect(formatTable([["1234567", "x"], ["a", "y"]])).toBe("1234567\tx\na\ty\n");
    expect(formatTable([["12345678", "x"], ["a", "y"]])).toBe("12345678\tx\na\t\ty\n");
  });

  it("counts runes, not bytes", () => {
    expect(formatTable([["ééééééé", "x"], ["a", "y"]])).toBe("ééééééé\tx\na\ty\n");
  });

  it("ends column blocks at lines without tabs, like Go's flush", () => {
    expect(formatTabbed("a\tb\nplain\nlonger-cell\tc\n")).toBe("a\tb\nplain\nlonger-cell\tc\n");
  });

  it("prints nothing for no rows", () => {
    expect(formatTable([])).toBe("");
  });
});
