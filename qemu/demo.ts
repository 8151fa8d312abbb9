/**
 * `npm start` (after scripts/setup.sh and the bundle): builds the image if it is missing or its inputs
 * changed, brings up a 3-machine cluster ("default"; a running one is reused if it runs this image),
 * starts the cluster registry, builds the web image from units/web/ and pushes it there through an
 * SSH forward, submits web@.service and starts web@1..3 through fleetctl --tunnel, waits until they
 * are active, and prints `fleetctl list-units` and how to reach the web instances and the cluster
 * (and how to roll out a new version with `fleetctl deploy`).
 */
import path from "node:path";
import { delay } from "../lib/async/delay";
import { run } from "../lib/process/run";
import { clustersRoot, imageInputsKey, staleClusterReason, type ClusterSpec } from "./cluster-layout";
import { runFleetctl, repoRoot } from "./cluster-fleetctl";
import { downCluster } from "./cluster-down";
import { loadCluster } from "./cluster-store";
import { upCluster } from "./cluster-up";
import { envLines } from "./cluster-env";
import { buildImageDir, pushToCluster } from "./cluster-images";
import { REGISTRY_ADDRESS } from "./cluster-registry";
import { Vm } from "./vm";

const NAME = process.env.COREFLEET_CLUSTER ?? "default";
const WEB = ["web@1.service", "web@2.service", "web@3.service"];
const say = (l: string): void => void process.stderr.write(`${l}\n`);
/**
 * How the printed commands that need root start: `sudo ` for an operator who ran `sudo npm start`,
 * nothing for one who is root already (Debian's minimal installs have no sudo at all).
 */
const asRoot = process.getuid?.() === 0 && process.env.SUDO_USER === undefined ? "" : "sudo ";

/**
 * Builds the image unless it is up to date: the builder compares the inputs (profile, fleetd and
 * fleetctl bundles, image-builder code) with the image's manifest and keeps an unchanged image in
 * seconds. Checking only that disk.qcow2 existed kept an image of older code after a change.
 */
async function ensureImage(imageDir: string): Promise<void> {
  say(`demo: npx tsx image-builder/main.ts build --out ${path.relative(repoRoot, imageDir)} (kept when its inputs are unchanged)`);
  await run("npx", ["tsx", "image-builder/main.ts", "build", "--out", imageDir], { cwd: repoRoot, inherit: true });
}

/** Reuses a running cluster of that name on the current image, else (re)creates it. */
async function ensureCluster(root: string, imageDir: string): Promise<ClusterSpec> {
  const existing = await loadCluster(root, NAME);
  if (existing) {
    const running = await Promise.all(existing.machines.map(async (m) => (await Vm.find(path.join(root, NAME, "machines", String(m.index))))?.isRunning() ?? false));
    const stale = staleClusterReason(existing, imageDir, await imageInputsKey(imageDir));
    if (existing.machines.length >= 3 && running.every(Boolean) && stale === undefined) {
      say(`demo: reusing the running cluster "${NAME}" (${existing.machines.length} machines)`);
      return existing;
    }
    say(`demo: cluster "${NAME}" ${stale !== undefined ? `cannot be reused: ${stale}` : "exists but is not fully running"}; recreating it`);
    await downCluster(root, NAME, say);
  }
  return upCluster({ root, name: NAME, size: 3, imageDir, log: say });
}

async function main(): Promise<void> {
  const started = Date.now();
  const root = clustersRoot();
  const imageDir = path.join(repoRoot, "build", "image");
  await ensureImage(imageDir);
  const spec = await ensureCluster(root, imageDir);
  const via = spec.machines[0];
  if (!via) throw new Error(`Cluster "${NAME}" has no machines`);
  // build → push → run: the cluster registry, the web image built from units/web/ on this host
  // (Debian packages, no registry contacted), pushed through an SSH forward via machine 1.
  say("demo: fleetctl start units/registry.service");
  await runFleetctl(root, spec, via, ["start", "--no-block", "units/registry.service"], { timeoutMs: 5 * 60_000 });
  const archive = path.join(repoRoot, "build", "containers", "web.oci.tar");
  say("demo: npx tsx image-builder/main.ts container units/web");
  const t0 = Date.now();
  await buildImageDir(path.join(repoRoot, "units", "web"), archive, { log: say });
  say(`demo: image-builder push web --to ${REGISTRY_ADDRESS}/web:1 --tunnel`);
  const pushed = await pushToCluster(root, spec, via, archive, "web:1", { waitMs: 5 * 60_000, log: (l) => say(`demo: ${l}`) });
  say(`demo: pushed ${pushed.pinned} (build + push ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  // The template too, not only its instances: deploy and scale (printed below) work on it.
  say("demo: fleetctl submit units/web@.service");
  await runFleetctl(root, spec, via, ["submit", "units/web@.service"], { timeoutMs: 5 * 60_000 });
  say(`demo: fleetctl start ${WEB.map((w) => `units/${w}`).join(" ")}`);
  // --no-block: the wait below polls list-units itself (a blocking start over the tunnel was seen to hang
  // after the units were launched).
  await runFleetctl(root, spec, via, ["start", "--no-block", ...WEB.map((w) => `units/${w}`)], {
    timeoutMs: 10 * 60_000,
    onStdout: (c) => process.stderr.write(c),
    onStderr: (c) => process.stderr.write(c),
  });
  const deadline = Date.now() + 10 * 60_000;
  let seen = "";
  for (;;) {
    const r = await runFleetctl(root, spec, via, ["list-units", "--fields", "unit,active,sub", "--output", "json"], { allowFailure: true });
    if (r.exitCode === 0) {
      const rows = (JSON.parse(r.stdout) as { unit: string; active: string; sub: string }[]).filter((u) => WEB.includes(u.unit));
      seen = rows.map((u) => `${u.unit} ${u.active}/${u.sub}`).join(", ");
      if (rows.length === WEB.length && rows.every((u) => u.active === "active")) break;
    } else {
      seen = r.stderr.trim().split("\n").pop() ?? "";
    }
    if (Date.now() > deadline) throw new Error(`Timed out after 600 s waiting for web@1..3 to be active; last seen: ${seen || "nothing"}`);
    await delay(5_000);
  }
  const table = await runFleetctl(root, spec, via, ["list-units"]);
  process.stdout.write(`\n$ fleetctl list-units\n${table.stdout}\n`);
  process.stdout.write(
    [
      `The cluster "${NAME}" is up and web@1..3 are active (${((Date.now() - started) / 1000).toFixed(0)} s).`,
      "",
      "Web instances (addresses exist only inside the cluster's network namespace):",
      ...spec.machines.map((m) => `  ${asRoot}ip netns exec ${spec.netns} node -e 'fetch("http://${m.ip}/").then(r => r.text()).then(console.log)'    # ${m.hostname}`),
      "",
      `A new web version (after the eval below): edit units/web/www/index.html, then`,
      "  npx tsx image-builder/main.ts container units/web",
      `  npx tsx image-builder/main.ts push web --to ${REGISTRY_ADDRESS}/web:2 --tunnel`,
      `  node dist/fleetctl.cjs deploy web@.service --set image=${REGISTRY_ADDRESS}/web:2`,
      "",
      "fleetctl against the cluster (SSH tunnel through 127.0.0.1):",
      `  eval "$(npx tsx qemu/main.ts env${NAME === "default" ? "" : ` --name ${NAME}`})"; node dist/fleetctl.cjs list-machines`,
      ...envLines(root, spec).map((l) => `  ${l}`),
      "",
      `Machines: npx tsx qemu/main.ts ssh 1 | status | console 1 | down   (cluster folder ${path.join(root, NAME)})`,
      "",
    ].join("\n"),
  );
}

main().catch((err: unknown) => {
  say(`demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
