import { describe, expect, it } from "vitest";
import { parseUnitFile, serializeUnitFile } from "../../lib/unit";
import { applySet, MAX_SET_KEYS, parseAssignment } from "./set-environment";

const body = (extra: string): string => `[Unit]\nDescription=web\n\n[Service]\n${extra}ExecStart=/usr/bin/podman run --rm \${image}\n\n[X-Fleet]\nConflicts=web@*.service\n`;

describe("applySet (--set KEY=VALUE)", () => {
  it("replaces the value of an Environment= line that assigns the key", () => {
    const out = serializeUnitFile(applySet(parseUnitFile(body("Environment=image=localhost/web\n")), { image: "registry.cluster:5000/web:2" }));
    expect(out).toContain("Environment=image=registry.cluster:5000/web:2\n");
    expect(out).not.toContain("localhost/web");
  });

  it("keeps the other assignments of a line that sets several, quoting values with spaces", () => {
    const out = applySet(parseUnitFile(body('Environment=A=1 image=old "B=two words"\n')), { image: "new img" });
    expect(out.find((o) => o.name === "Environment")?.value).toBe('A=1 "image=new img" "B=two words"');
  });

  it("sets every assignment of the key, the last one (which systemd uses) included", () => {
    const out = applySet(parseUnitFile(body("Environment=image=a A=1 image=b\nEnvironment=image=c\n")), { image: "new" });
    expect(out.filter((o) => o.name === "Environment").map((o) => o.value)).toEqual(["image=new A=1 image=new", "image=new"]);
  });

  it("sets up to 100 keys at once, new ones in the order given; refuses more (a request with 100,000 took fleetd minutes)", () => {
    const set = Object.fromEntries(Array.from({ length: MAX_SET_KEYS }, (_, i) => [`K${i}`, `v${i}`]));
    const out = applySet(parseUnitFile(body("Environment=K5=old A=1\n")), set);
    const env = out.filter((o) => o.name === "Environment").map((o) => o.value);
    expect(env[0]).toBe("K5=v5 A=1");
    expect(env.slice(1)).toEqual(Object.entries(set).filter(([k]) => k !== "K5").map(([k, v]) => `${k}=${v}`));
    expect(() => applySet(parseUnitFile(body("")), { ...set, more: "1" })).toThrow("too many --set assignments (101); at most 100 per deploy");
  });

  it("adds Environment=KEY=VALUE at the end of [Service] when no line assigns the key", () => {
    const out = applySet(parseUnitFile(body("")), { image: "registry.cluster:5000/web:2" });
    const i = out.findIndex((o) => o.name === "Environment");
    expect(out[i]).toEqual({ section: "Service", name: "Environment", value: "image=registry.cluster:5000/web:2" });
    expect(out[i - 1]?.name).toBe("ExecStart");
    expect(out[i + 1]?.section).toBe("X-Fleet");
  });

  it("refuses bad keys, values with line breaks and bodies without [Service]", () => {
    expect(() => parseAssignment("9x=1")).toThrow('invalid --set "9x=1": expected KEY=VALUE with KEY made of letters, digits and _ (not starting with a digit), e.g. image=registry.cluster:5000/web:2');
    expect(() => parseAssignment("image")).toThrow('invalid --set "image"');
    expect(parseAssignment("url=http://a/?b=c")).toEqual(["url", "http://a/?b=c"]);
    expect(() => applySet(parseUnitFile("[Unit]\nDescription=x\n"), { image: "a" })).toThrow("cannot --set image: the unit has no [Service] section to hold Environment=image=…");
    expect(() => applySet(parseUnitFile(body("")), { "a-b": "1" })).toThrow('invalid --set key "a-b"');
  });
});
