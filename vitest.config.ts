import { defineConfig } from "vitest/config";

// Four tiers, all run by `npm test` (e2e last); CI runs `npm test`.
// - unit: pure tests beside the code. No root, no etcd, no network namespaces, no podman, no
//   processes started: `npm run test:unit` passes as an unprivileged user (its `--configLoader runner`
//   loads this file without writing a bundled copy into a node_modules that user may not own).
// - integration: test/integration/: real etcd on loopback, fleetd processes and their API, the real
//   CLI, loopback SSH, other processes and loopback servers.
// - system: *.system.test.ts beside the code (and test/system/, empty today): root, podman, mmdebstrap, chroot,
//   network namespaces, a real kernel under QEMU.
// - e2e: test/e2e/: a QEMU cluster of our image (run it under /tmp/corefleet-qemu.lock).
const beside = ["lib", "fleetd", "fleetctl", "image-builder", "qemu"];
const long = { testTimeout: 60_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: beside.map((d) => `${d}/**/*.test.ts`),
          exclude: ["**/node_modules/**", "**/*.system.test.ts"],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          ...long,
        },
      },
      {
        test: {
          name: "system",
          include: ["test/system/**/*.test.ts", ...beside.map((d) => `${d}/**/*.system.test.ts`)],
          ...long,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 15 * 60_000,
          hookTimeout: 40 * 60_000,
          // One cluster at a time: e2e files run one after another in a single process.
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
