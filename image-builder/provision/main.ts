/**
 * corefleet-provision: runs once per boot (corefleet-provision.service), finds the user data, and
 * applies it. It never fails the boot: every problem is printed (console + journal) with what to fix,
 * and the host continues with DHCP and sshd so it can be repaired over SSH.
 */
import { writeFile } from "node:fs/promises";
import pkg from "../../package.json";
import { run } from "../../lib/process/run";
import { parseCloudConfig } from "./cloud-config";
import { applyCloudConfig, type SystemActions } from "./apply";
import { configDriveSource, findUserData, fwCfgSource, imdsSource } from "./sources";

const log = (line: string): void => {
  process.stdout.write(`corefleet-provision: ${line}\n`);
};

const liveActions: SystemActions = {
  async setHostname(name) {
    await writeFile("/proc/sys/kernel/hostname", name);
  },
  async run(command, args) {
    await run(command, args, { timeoutMs: 60_000 });
  },
};

async function main(): Promise<number> {
  const started = Date.now();
  const { data, notes } = await findUserData([configDriveSource(), fwCfgSource(), imdsSource()]);
  for (const n of notes) log(`source ${n}`);
  if (data === undefined) {
    log("no user data found; keeping the image's defaults (DHCP, single-member etcd, no SSH keys)");
    return 0;
  }
  log(`user data from ${data.source} (${data.text.length} bytes)`);
  let cc;
  try {
    cc = parseCloudConfig(data.text);
  } catch (err) {
    log(`ERROR: ${(err as Error).message}. Nothing was applied; the host boots with its defaults so you can repair it over SSH.`);
    return 1;
  }
  for (const w of cc.warnings) log(`warning: ${w}`);
  const result = await applyCloudConfig(cc, "/", liveActions);
  for (const d of result.done) log(`applied ${d}`);
  for (const e of result.errors) log(`ERROR: ${e}`);
  log(`finished in ${Date.now() - started} ms with ${result.errors.length} error(s)`);
  return result.errors.length > 0 ? 2 : 0;
}

if (process.argv.includes("--version")) {
  // The image build runs this to make provision.cjs's code cache (image-builder/code-cache.ts).
  process.stdout.write(`corefleet-provision version ${pkg.version}\n`);
} else {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      log(`ERROR: provisioning crashed: ${(err as Error).stack ?? String(err)}`);
      process.exitCode = 1;
    },
  );
}
